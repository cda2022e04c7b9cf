"""`ris report refusal`: one report's override of the patient's refusals of MSSanté sending (mssante.md §4,
RIS.MSS.21, RIS.MSS.25). Report ids, channels and RPPS only; never a patient's name."""

from __future__ import annotations

import typer
from sqlmodel import Session

from cli.acting import acting
from cli.common import fail
from ris.auth import roles
from ris.lifecycle import refusals
from ris.store import refusals as stored_refusals
from ris.store.db import in_unit_of_work
from ris.store.models import RefusalChannel, Report
from ris.store.reports import NotFound, get_report


def _state(value: bool) -> str:
    return "refused" if value else "allowed"


def refusal(
    report_id: str,
    channel: str = typer.Option(
        ...,
        "--channel",
        help="mss-patient (Mon espace santé, RIS.MSS.21) or mss-ps (professionals, RIS.MSS.25)",
    ),
    refuse: bool = typer.Option(False, "--refuse", help="Refuse this channel for this report"),
    withdraw: bool = typer.Option(
        False, "--withdraw", help="Allow this channel for this report, even if the patient refused it"
    ),
    follow_patient: bool = typer.Option(
        False, "--follow-patient", help="Drop this report's override: follow the patient's refusals"
    ),
    by: str | None = typer.Option(
        None, "--by", help="RPPS of the user (a known correspondent); default: the `ris login` RPPS"
    ),
) -> None:
    """Override the patient's refusal of one channel for this report only (who and when are kept, audited).

    On a report already validated, the override only applies to what has not left yet: the routing
    evaluates refusals when a version is planned (validation, replacement) and when a copy held back for
    the announcement is released; a mail already planned or sent is not recalled."""
    chosen = [
        name
        for name, on in (("--refuse", refuse), ("--withdraw", withdraw), ("--follow-patient", follow_patient))
        if on
    ]
    if len(chosen) != 1:
        fail("--refuse / --withdraw / --follow-patient: give exactly one of them")
    value = True if refuse else False if withdraw else None
    by = acting(by, roles.REPORT_EDIT).rpps

    def record(session: Session) -> tuple[Report, RefusalChannel, bool, stored_refusals.Refusals]:
        try:
            report = get_report(session, report_id)
        except NotFound:
            fail(f"report id {report_id!r}: no report with this id")
        exam_patient = refusals.patient_of(session, report)
        try:
            which = refusals.check_channel(channel)
            refusals.check_user(session, by)
            changed = refusals.override(session, report, which, value, by)
        except refusals.RefusalRuleError as exc:
            fail(str(exc))
        return report, which, changed, stored_refusals.for_report(session, report, exam_patient)

    report, which, changed, now = in_unit_of_work(record)
    setting = {True: "refused for this report", False: "allowed for this report", None: "follows the patient"}
    lead = f"report {report_id}: {which.value} {setting[value]}"
    typer.echo(f"{lead}, recorded by {by}" if changed else f"{lead} already; nothing recorded")
    typer.echo(
        f"  effective: mss-patient {_state(now.mss_patient)} ({now.mss_patient_source}), "
        f"mss-ps {_state(now.mss_ps)} ({now.mss_ps_source})"
    )
    if report.version > 0:
        typer.echo(
            "  validated: applies to what has not left yet (the next version planned, a patient copy "
            "waiting for the announcement); deliveries already planned or sent are unchanged"
        )


def register(app: typer.Typer) -> None:
    """Add `refusal` to the `ris report` commands."""
    app.command(name="refusal")(refusal)
