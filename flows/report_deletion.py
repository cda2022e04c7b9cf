"""Deleting a validated report (RIS.DMP.02, RIS.MSS.16): one deletion message to the PFI about the last
version it filed; it unpublishes wherever that version went. On the direct MSSanté route, the optional
deletion notice goes to each recipient a direct copy reached; on the direct DMP route, one ITI-62 deletion
removes what the engine submitted. Nothing is sent when nothing ever left."""

from __future__ import annotations

from prefect import flow

from flows.names import DELETION_FLOW
from tasks.deliveries import plan_deletion
from tasks.dmp import plan_dmp_deletion, send_dmp
from tasks.hl7 import publish_hl7
from tasks.mssante import plan_mss_deletion, send_mss
from tasks.report_state import publish_report_state


@flow(name=DELETION_FLOW, flow_run_name="delete-{report_id}", log_prints=False)
async def report_deletion(report_id: str, version: int) -> dict[str, object]:
    """`version`: the report's last version when it was deleted."""
    notices = await plan_mss_deletion(report_id, version)
    mss = {f"mss-{n}": await send_mss(n) for n in notices}
    dmp_deletion = await plan_dmp_deletion(report_id, version)
    if dmp_deletion is not None:
        mss[f"dmp-{dmp_deletion}"] = await send_dmp(dmp_deletion)
    published = await plan_deletion(report_id, version)
    hl7 = "nothing had left the RIS"
    if published is not None:
        hl7 = await publish_hl7(report_id, published, "delete")
    await publish_report_state(report_id)
    return {"published_version": published, "hl7": hl7} | mss
