"""Planning the deliveries of a validated version: one record per channel x recipient, created once."""

from __future__ import annotations

from prefect import task

from blocks.site import load_site_settings
from ris.distribution import plan_version
from ris.store.db import unit_of_work


@task(
    name="plan-deliveries",
    task_run_name="plan-deliveries-{report_id}-v{version}",
    retries=2,
    retry_delay_seconds=2,
)
async def plan_deliveries(report_id: str, version: int) -> dict[str, list[str]]:
    """Create the Delivery rows of this version, each with its idempotency key minted once (a re-run
    keeps existing rows). Returns the statuses per channel, without recipients' addresses."""
    settings = await load_site_settings()
    return await unit_of_work(plan_version, report_id, version, pfi=settings.hl7.enabled)
