"""`ris report`: validate a report (which starts its lifecycle) and see where it went."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from cli import report_refusal, review
from cli.acting import acting as acting_user
from cli.api_auth import explain_refusal
from cli.common import fail, intake_limits, print_json
from deployments.runs import start_announcement, start_deletion, start_lifecycle
from ris.auth import roles
from ris.lifecycle import reports
from ris.operations.summary import report_summary
from ris.store.db import in_unit_of_work, session_scope
from ris.store.reports import NotFound, get_report
from ris.text_rules import free_text_problem

app = typer.Typer(help="Validate reports and follow their distribution.")


def _start_or_explain(report_id: str, version: int) -> None:
    _start(start_lifecycle(report_id, version), f"report-{report_id}-v{version}", f"dispatch {report_id}")


def _start(starting: Coroutine[Any, Any, str], run_name: str, again: str) -> None:
    """Start a run; when the engine is down, what was recorded stays and the user learns how to go on."""
    try:
        run_id = asyncio.run(starting)
    except Exception as exc:  # the API is down or the deployment is not served: say so, keep the record
        if refusal := explain_refusal(exc):
            fail(f"recorded, but the run {run_name} could not start: {refusal}; then `ris report {again}`", 3)
        fail(
            f"recorded, but the run {run_name} could not start ({exc}). Start the engine (`ris up`), "
            f"then run `ris report {again}`.",
            code=3,
        )
    typer.echo(f"run {run_id} started: {run_name}")


def _acting(declared: str | None, permission: str) -> str:
    """The logged-in professional's RPPS (Pro Santé Connect), else the declared `--by` if the site allows,
    when that user holds `permission` (one line and nothing changed otherwise)."""
    return acting_user(declared, permission).rpps


def _read_text(path: Path, option: str) -> str:
    """A report's text from a file: UTF-8, free text (line breaks and tabs, no other control character),
    within the site's maximum (`intake.max_report_chars`, the file's size checked before it is read)."""
    limit = intake_limits(f"the site's maximum for {option}").max_report_chars
    too_long = f"{option} {path}: longer than {limit} characters (site setting intake.max_report_chars)"
    try:
        if path.stat().st_size > 4 * limit:  # at most 4 bytes a character in UTF-8
            fail(too_long)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{option} {path}: cannot be read as UTF-8 text ({exc.__class__.__name__})")
    if len(text) > limit:
        fail(too_long)
    if problem := free_text_problem(text):
        fail(f"{option} {path}: {problem}")
    return text


@app.command()
def validate(
    report_id: str,
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the validating radiologist (11 digits); default: the `ris login` RPPS"
    ),
) -> None:
    """Legally authenticate the report (new version) and start its lifecycle run."""
    acting = _acting(by, roles.REPORT_VALIDATE)
    try:
        version = in_unit_of_work(lambda session: reports.validate(session, report_id, acting).version)
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} validated as version {version}")
    _start_or_explain(report_id, version)


@app.command()
def provisional(
    report_id: str,
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist asking for other opinions; default: the `ris login` RPPS"
    ),
) -> None:
    """Mark a draft provisional (RIS.CRR.04): it waits for other radiologists and never leaves the RIS."""
    acting = _acting(by, roles.REPORT_EDIT)
    try:
        since = in_unit_of_work(
            lambda session: reports.mark_provisional(session, report_id, acting).provisional_since
        )
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
    acting = _acting(by, roles.REPORT_ANNOUNCE)
    try:
        report = in_unit_of_work(lambda session: reports.record_announcement(session, report_id, acting))
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
    acting = _acting(by, roles.REPORT_REPLACE)
    try:
        version = in_unit_of_work(
            lambda session: reports.replace(session, report_id, body, conclusion, acting).version
        )
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    typer.echo(f"report {report_id} validated as version {version} (replaces version {version - 1})")
    _start_or_explain(report_id, version)


class YesNo(StrEnum):
    yes = "yes"
    no = "no"


FIELD_NAMES = {"body": "text"}  # what the people who edit a report call its fields


@app.command()
def edit(
    report_id: str,
    text_file: Path = typer.Option(..., "--text-file", help="The report's new full text (UTF-8)"),
    conclusion_file: Path | None = typer.Option(None, "--conclusion-file", help="Its new conclusion"),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist who amends it (11 digits); default: the `ris login` RPPS"
    ),
) -> None:
    """Amend the text of a draft or provisional report, audited with who (the text stays out of the audit
    trail). A validated version stays as it was validated: correct it with `ris report replace`."""
    body = _read_text(text_file, "--text-file")
    conclusion = _read_text(conclusion_file, "--conclusion-file") if conclusion_file else None
    acting = _acting(by, roles.REPORT_EDIT)
    try:
        changed = in_unit_of_work(lambda session: reports.edit(session, report_id, body, conclusion, acting))
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    if not changed:
        typer.echo(f"report {report_id}: text and conclusion unchanged; nothing recorded")
        return
    names = ", ".join(FIELD_NAMES.get(name, name) for name in changed)
    typer.echo(f"report {report_id}: {names} changed by {acting}")


@app.command()
def flags(
    report_id: str,
    dmp_blocked: YesNo | None = typer.Option(
        None, "--dmp-blocked", case_sensitive=False, help="yes: never sent to the DMP (RIS.DMP.03)"
    ),
    mask_ps: YesNo | None = typer.Option(
        None, "--mask-ps", case_sensitive=False, help="yes: masked to professionals in the DMP (RIS.DMP.06)"
    ),
    announcement_required: YesNo | None = typer.Option(
        None,
        "--announcement-required",
        case_sensitive=False,
        help="yes: hidden from the patient until the announcement (RIS.CRR.03)",
    ),
    invisible_legal_reps: YesNo | None = typer.Option(
        None,
        "--invisible-legal-reps",
        case_sensitive=False,
        help="yes: invisible to the patient's legal representatives in the DMP",
    ),
    secret_connection: YesNo | None = typer.Option(
        None, "--secret-connection", case_sensitive=False, help="yes: connexion secrète (DMP)"
    ),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist who changes them; default: the `ris login` RPPS"
    ),
) -> None:
    """Change the distribution flags of a draft or provisional report (the worklist's names), audited
    with who and the new values; they decide where the report goes once validated."""
    given = {
        "dmp_blocked": dmp_blocked,
        "mask_ps": mask_ps,
        "announcement_required": announcement_required,
        "invisible_legal_reps": invisible_legal_reps,
        "secret_connection": secret_connection,
    }
    wanted = {name: value is YesNo.yes for name, value in given.items() if value is not None}
    if not wanted:
        fail("give at least one of " + ", ".join(f"--{n.replace('_', '-')} yes|no" for n in reports.FLAGS))
    acting = _acting(by, roles.REPORT_EDIT)
    try:
        changed = in_unit_of_work(lambda session: reports.set_flags(session, report_id, wanted, acting))
    except (reports.ReportRuleError, NotFound) as exc:
        fail(str(exc))
    if not changed:
        typer.echo(f"report {report_id}: flags unchanged; nothing recorded")
        return
    shown = ", ".join(f"{name} {'yes' if wanted[name] else 'no'}" for name in changed)
    typer.echo(f"report {report_id}: {shown} (changed by {acting})")


@app.command()
def delete(
    report_id: str,
    reason: str = typer.Option(..., "--reason", help="Why the report is withdrawn (audit trail)"),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the radiologist who deletes it; default: the `ris login` RPPS"
    ),
) -> None:
    """Withdraw a validated report: status deleted, and a deletion to every channel that had it."""
    acting = _acting(by, roles.REPORT_DELETE)
    try:
        version = in_unit_of_work(lambda session: reports.delete(session, report_id, reason, acting).version)
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


review.register(app)
report_refusal.register(app)
