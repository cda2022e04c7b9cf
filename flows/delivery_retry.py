"""An administrator's retry of failed deliveries, on every channel: one delivery, one report's, or a
filtered batch, audited with who and why. The `delivery-retry` deployment runs it from the CLI
(`ris delivery retry`, which records who asks and starts the run with that request's id) or from the UI,
whose runs are recorded as asked from the UI and can change no address."""

from __future__ import annotations

import asyncio
import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from flows.names import RETRY_FLOW
from flows.release import release_announced
from ris.store.models import Channel
from tasks.report_state import link_retry_run, publish_report_state
from tasks.retry import accept_request, reopen_unit, retry_outcome, select_retries, send_again


def _run_name() -> str:
    """retry-delivery-<ids>, retry-report-<id>, or retry-all-failed[-<channel>] (ids only)."""
    parameters = flow_run.parameters
    if ids := parameters.get("delivery_ids"):
        return "retry-delivery-" + "-".join(map(str, ids[:3])) + ("-etc" if len(ids) > 3 else "")
    if report_id := parameters.get("report_id"):
        return f"retry-report-{report_id}"
    channel = parameters.get("channel")
    return "retry-all-failed" + (f"-{Channel(channel).value}" if channel else "")


@flow(name=RETRY_FLOW, flow_run_name=_run_name, log_prints=False, persist_result=False)
async def retry_delivery(
    reason: str | None = None,
    delivery_ids: list[int] | None = None,
    report_id: str | None = None,
    channel: Channel | None = None,
    since: dt.date | None = None,
    request_id: int | None = None,
    max_concurrency: int = 4,
) -> dict[str, str]:
    """Send again what failed: `delivery_ids`, else every failed delivery (of `report_id`, of `channel`,
    failed since `since`). `request_id`: the request `ris delivery retry` recorded after checking who acts
    (who, why, what, a professional's new address); the run does what it says, once. Without one (Run
    from the UI) `reason` is required and audited, the actor recorded is the Prefect UI, and no address
    changes. At most `max_concurrency` sends at once. What reached its recipient meanwhile is never sent
    again, so a batch started again after an interruption sends only what is left. Returns the status
    per delivery id."""
    run = str(flow_run.id) if flow_run.id else None
    mandate = await accept_request(request_id, reason, delivery_ids, report_id, channel, since, run)
    units = await select_retries(mandate)
    slots = asyncio.Semaphore(max(1, max_concurrency))

    async def one(unit) -> None:
        async with slots:
            dispatch = await reopen_unit(unit, mandate, run)
            if dispatch is None:
                return
            status = await send_again(dispatch)
            if dispatch.releases_announced(status):
                await release_announced(dispatch.report_id, dispatch.version)

    async def show(report: str) -> None:
        async with slots:
            await link_retry_run(report)
            await publish_report_state(report)

    outcomes = await asyncio.gather(*(one(unit) for unit in units), return_exceptions=True)
    reports = sorted(
        {unit.report_id for unit in units} | ({mandate.report_id} if mandate.report_id else set())
    )
    await asyncio.gather(*(show(report) for report in reports))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise errors[0]
    return {str(k): v for k, v in (await retry_outcome([i for u in units for i in u.delivery_ids])).items()}
