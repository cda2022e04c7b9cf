"""An administrator's retry: thin tasks around `ris.operations.retry` (what to retry, reopened and
audited) and `ris.operations.retry_relay` (a new message to the PFI for relayed copies whose receipt
failed), and the one table that says which task sends each kind of delivery again. Logs carry delivery
and report ids only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from prefect import task

from blocks.pfi import load_pfi_endpoint
from blocks.site import load_site_settings
from ris import clock
from ris.channels.hl7 import publish
from ris.operations import retry, retry_relay
from ris.store.db import unit_of_work
from ris.store.models import Channel
from tasks.dmp import send_dmp
from tasks.documents import rebuild_without_ins
from tasks.hl7 import publish_hl7, send_to_pfi
from tasks.mssante import send_mss
from tasks.reminders import send_reminder
from tasks.run_context import run_logger, sending_retries, store_retries

RETRIES = 5


@task(
    name="resend-relayed",
    task_run_name="resend-relayed-{message_id}",
    **sending_retries(RETRIES),
)
async def resend_relayed(message_id: int) -> str:
    """Send the copies the PFI relayed but whose receipt failed, in a new message carrying only them
    (`ris.operations.retry_relay`); returns the new message's status."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    endpoint = await load_pfi_endpoint()
    attempt = await unit_of_work(retry_relay.prepare, message_id, settings)
    if attempt.rebuild:
        report_id, version = await unit_of_work(retry.report_of, message_id)
        await rebuild_without_ins(report_id, version, f"hl7 resend {message_id}")
        attempt = await unit_of_work(retry_relay.prepare, message_id, settings)
    if attempt.er7 is None:
        log.info("hl7 resend %s is %s, nothing to send", message_id, attempt.status.value)
        return attempt.status.value
    return await send_to_pfi(
        endpoint,
        settings,
        attempt,
        what=f"hl7 resend {message_id}",
        rejected=publish.record_rejected,
        transient=publish.record_transient,
        accepted=retry_relay.record_accepted,
    )


Sender = Callable[[retry.Dispatch], Awaitable[str]]

# How each kind of delivery is sent again (`ris.operations.retry.sender_key`): one line per kind.
SENDERS: dict[retry.SendAgain, Sender] = {
    retry.SendAgain.hl7: lambda d: publish_hl7(d.report_id, d.version, d.action),
    retry.SendAgain.relay: lambda d: resend_relayed(d.delivery_id),
    retry.SendAgain.direct_dmp: lambda d: send_dmp(d.delivery_id),
    retry.SendAgain.direct_mss_ps: lambda d: send_mss(d.delivery_id),
    retry.SendAgain.direct_mss_patient: lambda d: send_mss(d.delivery_id),
    retry.SendAgain.reminder: lambda d: send_reminder(d.delivery_id),
}


@task(name="accept-retry-request", task_run_name="accept-retry-request", **store_retries())
async def accept_request(
    request_id: int | None,
    reason: str | None,
    delivery_ids: list[int] | None,
    report_id: str | None,
    channel: Channel | None,
    since: dt.date | None,
    run: str | None,
) -> retry.Mandate:
    """On whose word the run retries: the request `ris delivery retry` recorded (claimed by this run), or
    the Prefect UI's, which names no actor and no address (`ris.operations.retry.accept`); the run's own
    parameters are what it was given."""
    given = retry.Mandate("", reason or "", delivery_ids, report_id, channel, since)
    mandate = await unit_of_work(retry.accept, request_id, given, run)
    run_logger(__name__).info(
        "retry asked %s", f"by request {request_id}" if request_id is not None else "from the Prefect UI"
    )
    return mandate


@task(name="select-retries", task_run_name="select-retries", **store_retries())
async def select_retries(mandate: retry.Mandate) -> list[retry.RetryUnit]:
    """What to retry: the explicit deliveries, or every failed one matching the filters, grouped into the
    units their senders send (and those an interrupted retry reopened and never sent)."""
    log = run_logger(__name__)
    retry.check_request(mandate.actor, mandate.reason, to=mandate.to, delivery_ids=mandate.delivery_ids)
    since = mandate.since
    since_at = clock.day_start(since, (await load_site_settings()).timezone) if since else None
    units, skipped = await unit_of_work(
        retry.select_units,
        delivery_ids=mandate.delivery_ids,
        report_id=mandate.report_id,
        channel=mandate.channel,
        since=since_at,
    )
    for line in skipped:
        log.info(line)
    unknown = {u.kind for u in units} - set(SENDERS)
    if unknown:
        raise retry.RetryRuleError(f"no sender for {', '.join(sorted(unknown))} in this engine")
    log.info("%s deliveries to retry in %s sends", sum(len(u.delivery_ids) for u in units), len(units))
    return units


@task(name="reopen-delivery", task_run_name="reopen-{unit.kind}-{unit.delivery_ids[0]}", **store_retries())
async def reopen_unit(
    unit: retry.RetryUnit, mandate: retry.Mandate, run: str | None
) -> retry.Dispatch | None:
    """Audit who retries what and why, and put the unit back to pending (None: it went meanwhile)."""
    return await unit_of_work(
        retry.reopen,
        unit,
        actor=mandate.actor,
        reason=mandate.reason,
        to=mandate.to,
        run=run,
        request=mandate.request_id,
    )


async def send_again(dispatch: retry.Dispatch) -> str:
    """Send one reopened unit with the sender of its kind; returns the sent delivery's status."""
    return await SENDERS[dispatch.kind](dispatch)


@task(name="retry-outcome", task_run_name="retry-outcome", **store_retries())
async def retry_outcome(delivery_ids: list[int]) -> dict[int, str]:
    """The status of every retried delivery once its send settled."""
    return await unit_of_work(retry.settled, delivery_ids)
