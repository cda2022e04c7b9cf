"""The identity-vigilance worklist in the operations plane (rule 55): a table artifact of the open items
and one event per item open longer than the site's threshold, which the `RIS identity worklist item
overdue` automation turns into a notification (deployments/alerts.py). Ids, kinds and ages only."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import acreate_table_artifact
from prefect.events import emit_event

from blocks.site import load_site_settings
from ris.identity import vigilance
from ris.operations import scheduled
from ris.site.settings import SiteSettings
from ris.store.db import unit_of_work
from tasks.run_context import run_logger, store_retries

ARTIFACT_KEY = "identity-worklist"
OVERDUE_EVENT = "ris.identity-worklist.overdue"


@task(name="publish-identity-worklist", **store_retries())
async def publish_identity_worklist() -> int:
    """Refresh the table artifact of the open items; returns how many are open."""
    rows = await unit_of_work(vigilance.operations_rows)
    await acreate_table_artifact(
        table=rows,
        key=ARTIFACT_KEY,
        description=f"Identity-vigilance worklist: {len(rows)} open items (ids only; "
        "`ris identity worklist --open` gives reasons and patients)",
    )
    return len(rows)


@task(name="alert-identity-worklist", **store_retries())
async def alert_overdue_items() -> int:
    """Emit `ris.identity-worklist.overdue` for each open item older than the site's threshold; once per
    item: the item keeps when it was alerted (its id repeats across sites, it cannot be the event's)."""
    log = run_logger(__name__)
    try:
        hours = (await load_site_settings()).identity_worklist_alert_hours
    except scheduled.NotConfigured:
        hours = SiteSettings().identity_worklist_alert_hours
        log.info("no site settings saved: items alert after the default %s h", hours)
    items = await unit_of_work(vigilance.overdue, hours)
    for item in items:
        emit_event(
            event=OVERDUE_EVENT,
            resource={
                "prefect.resource.id": f"ris.worklist-item.{item.id}",
                "ris.worklist-kind": item.kind,
            },
            payload={"threshold_hours": hours},
        )
    if items:
        log.warning("%s identity worklist items open for more than %s h", len(items), hours)
    return len(items)
