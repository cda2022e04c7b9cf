"""`ris report`: validate a report (which starts its lifecycle) and see where it went."""

from __future__ import annotations

import asyncio

import typer

from cli.common import fail, print_json
from deployments.runs import start_lifecycle
from ris import reports
from ris.store.db import session_scope
from ris.store.reports import NotFound, get_report
from ris.summary import report_summary

app = typer.Typer(help="Validate reports and follow their distribution.")


def _start_or_explain(report_id: str, version: int) -> None:
    try:
        run_id = asyncio.run(start_lifecycle(report_id, version))
    except Exception as exc:  # the API is down or the deployment is not served: say so, keep the validation
        fail(
            f"report {report_id} v{version} is validated, but its lifecycle could not start ({exc}). "
            f"Start the engine (`ris up`), then run `ris report dispatch {report_id}`.",
            code=3,
        )
    typer.echo(f"lifecycle run {run_id} started: report-{report_id}-v{version}")


@app.command()
def validate(
    report_id: str,
    by: str = typer.Option(..., "--by", help="RPPS of the validating radiologist (11 digits)"),
) -> None:
    """Legally authenticate the report (new version) and start its lifecycle run."""
    try:
        with session_scope() as session:
            version = reports.validate(session, report_id, by).version
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} validated as version {version}")
    _start_or_explain(report_id, version)


@app.command()
def provisional(
    report_id: str,
    by: str = typer.Option(..., "--by", help="RPPS of the radiologist asking for other opinions"),
) -> None:
    """Mark a draft provisional (RIS.CRR.04): it waits for other radiologists and never leaves the RIS."""
    try:
        with session_scope() as session:
            since = reports.mark_provisional(session, report_id, by).provisional_since
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} provisional since {since.isoformat(timespec='seconds')}")


@app.command()
def dispatch(report_id: str) -> None:
    """Start the lifecycle run of the current version again if it never started (no duplicate run)."""
    try:
        with session_scope() as session:
            report = get_report(session, report_id)
    except NotFound as exc:
        fail(str(exc))
    if report.version == 0:
        fail(f"report {report_id} is {report.status.value}: validate it first")
    _start_or_explain(report_id, report.version)


@app.command()
def show(
    report_id: str, as_json: bool = typer.Option(False, "--json", help="Machine-readable output")
) -> None:
    """The report's state and its per-channel delivery timeline."""
    try:
        with session_scope() as session:
            summary = report_summary(session, report_id, with_timeline=True)
    except NotFound as exc:
        fail(str(exc))
    if as_json:
        print_json(summary)
        return
    typer.echo(f"report {summary['id']}  version {summary['version']}  {summary['status']}")
    for channel, status in summary["channels"].items():
        reason = summary["reasons"].get(channel)
        typer.echo(f"  {channel:<12} {status}" + (f"  ({reason})" if reason else ""))
    for delivery in summary["deliveries"]:
        typer.echo(f"  - {delivery['channel']} → {delivery['recipient']} [{delivery['route']}]")
        for event in delivery["timeline"]:
            detail = f"  {event['detail']}" if event["detail"] else ""
            typer.echo(f"      {event['at']}  {event['status']}{detail}")
