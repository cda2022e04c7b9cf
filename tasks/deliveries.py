"""Planning the deliveries of a validated version: one record per channel x recipient, created once. Each
planning task returns what is left to send, so that the flow starts a sending task only for real work."""

from __future__ import annotations

from prefect import task

from blocks.site import load_site_settings
from ris.lifecycle import distribution
from ris.lifecycle.distribution import DeletionPlan, ReleasePlan, VersionPlan
from ris.store.db import unit_of_work
from tasks.run_context import store_retries


@task(name="plan-deliveries", task_run_name="plan-deliveries-{report_id}-v{version}", **store_retries())
async def plan_deliveries(report_id: str, version: int) -> VersionPlan:
    """Create the Delivery rows of this version, each with its idempotency key minted once (a re-run
    keeps existing rows). Returns the statuses per channel, without recipients' addresses, and what is
    left to send."""
    settings = await load_site_settings()
    return await unit_of_work(
        distribution.plan_version,
        report_id,
        version,
        pfi=settings.hl7.enabled,
        direct=distribution.direct_channels(settings),
        dmp=settings.dmp,
    )


@task(name="plan-release", task_run_name="plan-release-{report_id}-v{version}", **store_retries())
async def plan_release(report_id: str, version: int) -> ReleasePlan:
    """After the announcement: the visibility update and the patient's copy of the version, through the
    PFI once its own message was filed, directly once the direct copy reached its peer
    (ris.lifecycle.distribution.plan_release). Returns what is left to send."""
    return await unit_of_work(distribution.plan_release, report_id, version)


@task(name="plan-deletion", task_run_name="plan-deletion-{report_id}", **store_retries())
async def plan_deletion(report_id: str, version: int) -> DeletionPlan:
    """Everything the deletion of the report sends: the PFI's deletion message of the last version it
    filed, the direct MSSanté notices (the site's choice, RIS.MSS.16) and the direct DMP deletion."""
    settings = await load_site_settings()
    return await unit_of_work(
        distribution.plan_report_deletion, report_id, version, notices=settings.hl7.deletion_notice_mss
    )
