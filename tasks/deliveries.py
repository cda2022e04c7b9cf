"""Planning the deliveries of a validated version: one record per channel x recipient, created once."""

from __future__ import annotations

from prefect import task

from blocks.site import load_site_settings
from ris import routing
from ris.ids import new_key
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Delivery
from ris.store.reports import load_bundle


@task(
    name="plan-deliveries",
    task_run_name="plan-deliveries-{report_id}-v{version}",
    retries=2,
    retry_delay_seconds=2,
)
async def plan_deliveries(report_id: str, version: int) -> dict[str, list[str]]:
    """Create the Delivery rows of this version (each with its idempotency key, minted here once).

    Re-running it keeps existing rows untouched, so a retry or a re-run never mints a second key.
    Returns the statuses per channel, without recipients' addresses."""
    settings = await load_site_settings()
    with session_scope() as session:
        bundle = load_bundle(session, report_id, version)
        for planned in routing.plan(bundle, pfi=settings.hl7.enabled):
            if deliveries.find(session, report_id, version, planned.channel, planned.recipient):
                continue
            row = Delivery(
                report_id=report_id,
                version=version,
                channel=planned.channel,
                recipient=planned.recipient,
                route=planned.route,
                status=planned.status,
                idempotency_key=new_key(),
            )
            session.add(row)
            deliveries.set_status(session, row, planned.status, planned.reason)
        statuses: dict[str, list[str]] = {}
        for row in deliveries.for_version(session, report_id, version):
            statuses.setdefault(row.channel.value, []).append(row.status.value)
    return statuses
