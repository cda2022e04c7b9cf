"""`ris delivery`: see failed deliveries and retry them, on every channel: one delivery, one report's, or
a filtered batch, audited with who and why."""

from __future__ import annotations

import asyncio
import datetime as dt

import typer

from cli.acting import acting
from cli.api_auth import explain_refusal
from cli.common import fail, print_json, site_zone
from deployments.runs import start_retry
from ris import clock
from ris.auth import roles
from ris.operations import retry as retries
from ris.store import deliveries
from ris.store.db import in_unit_of_work, session_scope
from ris.store.models import Channel, Delivery, Report

app = typer.Typer(help="Failed deliveries and their retry by an administrator.")


@app.command("failed")
def list_failed(
    channel: Channel | None = typer.Option(None, help="Only this channel"),
    report_id: str | None = typer.Option(None, "--report", help="Only this report"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every failed delivery with its reason."""
    with session_scope() as session:
        rows = [
            {
                "report": d.report_id,
                "version": d.version,
                "channel": d.channel.value,
                "action": d.action,
                "delivery": d.id,
                "attempts": d.attempts,
                "reason": d.reason,
                "at": d.updated_at.isoformat(),
            }
            for d in deliveries.failed(session, channel, report_id)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        where = f"{row['report']} v{row['version']} {row['channel']:<12} delivery {row['delivery']}"
        typer.echo(f"{where}: {row['reason']}")
    typer.echo(f"{len(rows)} failed")


def _target(ident: str | None, delivery: int | None, report: str | None) -> tuple[int | None, str | None]:
    """ID is a delivery id when it names a delivery and no report; a report id when it names a report
    and no delivery; both: the user says which with --delivery or --report."""
    if ident is None:
        return delivery, report
    if delivery is not None or report is not None:
        fail("give the ID, or --delivery / --report, not both")
    with session_scope() as session:
        is_delivery = ident.isdigit() and session.get(Delivery, int(ident)) is not None
        is_report = session.get(Report, ident) is not None
    if is_delivery and is_report:
        fail(
            f"ID {ident}: both a delivery id and a report id; "
            f"say which with --delivery {ident} or --report {ident}"
        )
    if is_delivery:
        return int(ident), None
    if is_report:
        return None, ident
    fail(f"ID {ident}: no delivery and no report has this id (see `ris delivery failed`)")


def _since(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r}: a date as YYYY-MM-DD")


@app.command()
def retry(
    ident: str | None = typer.Argument(
        None,
        metavar="ID",
        help="A delivery id (see `ris delivery failed`), or a report id: its failed deliveries",
    ),
    all_failed: bool = typer.Option(
        False, "--all-failed", help="Every failed delivery (batch), with the filters"
    ),
    delivery: int | None = typer.Option(None, "--delivery", help="This delivery (when ID is ambiguous)"),
    report: str | None = typer.Option(None, "--report", help="This report's failed deliveries"),
    channel: Channel | None = typer.Option(None, help="Only this channel"),
    since: str | None = typer.Option(None, help="Only deliveries that failed since this date (YYYY-MM-DD)"),
    reason: str | None = typer.Option(None, "--reason", help="Why (required, audited)"),
    by: str | None = typer.Option(None, "--by", help="Who asks (RPPS); default: the `ris login` RPPS"),
    to: str | None = typer.Option(
        None, "--to", help="The new MSSanté address of a professional (one delivery)"
    ),
    max_concurrency: int = typer.Option(4, "--max-concurrency", min=1, max=32, help="Sends at once"),
) -> None:
    """Send failed deliveries again, on every channel (HL7 message, copies the PFI relayed whose receipt
    failed, direct MSSanté, reminders); what reached its recipient is never sent again. The request (who,
    why, what, the new address) is recorded and audited, and one run of the `delivery-retry` deployment
    carries it out; started again after an interruption, it sends what is left."""
    delivery_id, report_id = _target(ident, delivery, report)
    if (delivery_id is None and report_id is None) != all_failed:
        fail("give one ID (a delivery or a report), or --all-failed for the batch")
    if to is not None and delivery_id is None:
        fail("--to: give the one delivery whose recipient's address changed")
    asker = acting(by, roles.DELIVERY_RETRY).rpps
    try:
        actor, why = retries.check_request(asker, reason or "")
    except retries.RetryRuleError as exc:
        fail(str(exc))
    day = _since(since)
    since_at = clock.day_start(day, site_zone("`ris delivery retry --since`")) if day else None
    try:
        with session_scope() as session:
            units, skipped = retries.select_units(
                session,
                delivery_ids=[delivery_id] if delivery_id is not None else None,
                report_id=report_id,
                channel=channel,
                since=since_at,
            )
            if to is not None and units:
                row = session.get(Delivery, delivery_id)
                if row.channel is not Channel.mss_ps:
                    fail(f"--to: only an MSSanté copy to a professional has an address (not {row.channel})")
    except retries.RetryRuleError as exc:
        fail(str(exc))
    for line in skipped:
        typer.echo(line)
    if not units:
        fail(retries.not_found_reason(channel, report_id) if delivery_id is None else "nothing to retry")
    mandate = retries.Mandate(
        actor,
        why,
        [i for u in units for i in u.delivery_ids] if delivery_id is not None else None,
        report_id,
        channel,
        day,
        to,
    )
    try:  # who asks, why, what and the new address are the request's: the run carries only its id
        request_id = in_unit_of_work(lambda session: retries.record_request(session, mandate))
    except retries.RetryRuleError as exc:
        fail(str(exc))
    parameters = {
        "request_id": request_id,
        "reason": why,
        "delivery_ids": mandate.delivery_ids,
        "report_id": report_id,
        "channel": channel.value if channel else None,
        "since": day.isoformat() if day else None,
        "max_concurrency": max_concurrency,
    }
    tags = sorted({f"retry:{u.kind}" for u in units})
    try:
        run_id = asyncio.run(start_retry(parameters, tags))
    except Exception as exc:  # the API is down or the deployment is not served
        fail(
            explain_refusal(exc) or f"the retry could not start ({exc}); start the engine with `ris up`",
            code=3,
        )
    count = sum(len(u.delivery_ids) for u in units)
    typer.echo(f"retry run {run_id} started: {count} deliveries in {len(units)} sends ({', '.join(tags)})")
