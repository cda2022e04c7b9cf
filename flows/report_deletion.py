"""Deleting a validated report (RIS.DMP.02, RIS.MSS.16): one deletion message to the PFI about the last
version it filed; it unpublishes wherever that version went. Nothing is sent when nothing ever left."""

from __future__ import annotations

from prefect import flow

from flows.names import DELETION_FLOW
from tasks.deliveries import plan_deletion
from tasks.hl7 import publish_hl7


@flow(name=DELETION_FLOW, flow_run_name="delete-{report_id}", log_prints=False)
async def report_deletion(report_id: str, version: int) -> dict[str, object]:
    """`version`: the report's last version when it was deleted."""
    published = await plan_deletion(report_id, version)
    if published is None:
        return {"published_version": None, "hl7": "nothing had left the RIS"}
    return {"published_version": published, "hl7": await publish_hl7(report_id, published, "delete")}
