"""`ris report`: validate a report (which starts its lifecycle) and see where it went."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from cli.common import fail, print_json
from deployments.runs import start_announcement, start_deletion, start_lifecycle
from ris import reports
from ris.auth.actor import ActorRefused, acting_professional
from ris.auth.settings import AuthConfigError
from ris.auth.tokens import ProviderUnreachable, TokenRejected
from ris.config import EngineConfig
from ris.store.db import session_scope
from ris.store.reports import NotFound, get_report
from ris.summary import report_summary

app = typer.Typer(help="Validate reports and follow their distribution.")


def _start_or_explain(report_id: str, version: int) -> None:
    _start(start_lifecycle(report_id, version), f"report-{report_id}-v{version}", f"dispatch {report_id}")


def _start(starting: Coroutine[Any, Any, str], run_name: str, again: str) -> None:
    """Start a run; when the engine is down, what was recorded stays and the user learns how to go on."""
    try:
        run_id = asyncio.run(starting)
    except Exception as exc:  # the API is down or the deployment is not served: say so, keep the record
        fail(
            f"recorded, but the run {run_name} could not start ({exc}). Start the engine (`ris up`), "
            f"then run `ris report {again}`.",
            code=3,
        )
    typer.echo(f"run {run_id} started: {run_name}")


def _acting(declared: str | None) -> str:
    """The logged-in professional's RPPS (Pro Santé Connect), else the declared `--by` if the site allows."""
    try:
        return acting_professional(declared, EngineConfig.from_env().data_dir).rpps
    except (ActorRefused, AuthConfigError, TokenRejected, ProviderUnreachable) as exc:
        fail(str(exc))


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{option} {path}: cannot be read as UTF-8 text ({exc.__class__.__name__})")


@app.command()
def validate(
    report_id: str,
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the validating radiologist (11 digits); default: the `ris login` RPPS"
    ),
) -> None:
    """Legally authenticate the report (new version) and start its lifecycle run."""
    acting = _acting(by)
    try:
        with session_scope() as session:
            version = reports.validate(session, report_id, acting).version
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
def announce(
    report_id: str,
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist who made the announcement; default: the `ris login` RPPS"
    ),
) -> None:
    """Record "annonce réalisée" (RIS.CRR.03) and release what waited for it: the DMP copy made visible
    to the patient and the patient's copy. Recording it again restarts nothing already sent."""
    acting = _acting(by)
    try:
        with session_scope() as session:
            report = reports.record_announcement(session, report_id, acting)
            version, at = report.version, report.announcement_recorded_at
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id}: announcement recorded at {at.isoformat(timespec='seconds')}")
    _start(
        start_announcement(report_id, version), f"announce-{report_id}-v{version}", f"announce {report_id}"
    )


@app.command()
def replace(
    report_id: str,
    text_file: Path = typer.Option(..., "--text-file", help="The corrected report text (UTF-8)"),
    conclusion_file: Path | None = typer.Option(None, "--conclusion-file", help="The corrected conclusion"),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the validating radiologist (11 digits); default: the `ris login` RPPS"
    ),
) -> None:
    """Validate a corrected text as version n+1: it replaces version n ("annule et remplace") on every
    channel and for every recipient that had it."""
    body = _read_text(text_file, "--text-file")
    conclusion = _read_text(conclusion_file, "--conclusion-file") if conclusion_file else None
    acting = _acting(by)
    try:
        with session_scope() as session:
            version = reports.replace(session, report_id, body, conclusion, acting).version
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} validated as version {version} (replaces version {version - 1})")
    _start_or_explain(report_id, version)


@app.command()
def delete(
    report_id: str,
    reason: str = typer.Option(..., "--reason", help="Why the report is withdrawn (audit trail)"),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist who deletes it; default: the `ris login` RPPS"
    ),
) -> None:
    """Withdraw a validated report: status deleted, and a deletion to every channel that had it."""
    acting = _acting(by)
    try:
        with session_scope() as session:
            version = reports.delete(session, report_id, reason, acting).version
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} deleted")
    _start(start_deletion(report_id, version), f"delete-{report_id}", f"delete {report_id} --reason …")


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
    announcement = summary["announcement"]
    if announcement["required"]:
        recorded = announcement["recorded_at"]
        done = f"recorded {recorded} by {announcement['recorded_by']}" if recorded else "not recorded yet"
        typer.echo(f"  announcement required: {done}")
    for delivery in summary["deliveries"]:
        waiting = delivery["status"] == "waiting_announcement" and delivery["timeline"]
        since = f"  waiting since {delivery['timeline'][0]['at']}" if waiting else ""
        where = f"{delivery['recipient']} [{delivery['route']}, {delivery['action']}]"
        typer.echo(f"  - {delivery['channel']} → {where}{since}")
        for event in delivery["timeline"]:
            detail = f"  {event['detail']}" if event["detail"] else ""
            typer.echo(f"      {event['at']}  {event['status']}{detail}")


from cli import review  # noqa: E402

review.register(app)
from cli import report_refusal  # noqa: E402

report_refusal.register(app)
