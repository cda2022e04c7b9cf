"""Planning the deliveries of a validated version: one record per channel x recipient, created once."""

from __future__ import annotations

from prefect import task

from blocks.site import load_site_settings
from ris import distribution
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
    return await unit_of_work(
        distribution.plan_version,
        report_id,
        version,
        pfi=settings.hl7.enabled,
        direct=distribution.direct_channels(settings),
        dmp=settings.dmp,
    )


@task(
    name="plan-release", task_run_name="plan-release-{report_id}-v{version}", retries=2, retry_delay_seconds=2
)
async def plan_release(report_id: str, version: int) -> list[str]:
    """After the announcement: the visibility update and the patient's copy of the version, once its own
    message was filed (ris.distribution.plan_release). Returns the hl7 actions to send."""
    return await unit_of_work(distribution.plan_release, report_id, version)


@task(name="plan-deletion", task_run_name="plan-deletion-{report_id}", retries=2, retry_delay_seconds=2)
async def plan_deletion(report_id: str, version: int) -> int | None:
    """The deletion message of the last version the PFI filed (None: nothing ever left)."""
    return await unit_of_work(distribution.plan_deletion, report_id, version)
