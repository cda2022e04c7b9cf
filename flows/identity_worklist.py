"""identity-worklist: the identity-vigilance worklist shown in the Prefect UI (a table artifact, ids only)
and its overdue items alerted through the `ris-alerts` block; scheduled in prefect.yaml."""

from __future__ import annotations

from prefect import flow

from flows.names import IDENTITY_WORKLIST_FLOW
from tasks.identity_worklist import alert_overdue_items, publish_identity_worklist


@flow(name=IDENTITY_WORKLIST_FLOW, flow_run_name="identity-worklist")
async def identity_worklist() -> dict[str, int]:
    """Publish the open items, then alert those past the site's threshold; returns the two counts."""
    return {"open": await publish_identity_worklist(), "alerted": await alert_overdue_items()}
