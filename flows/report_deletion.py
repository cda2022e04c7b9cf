"""Deleting a validated report (RIS.DMP.02, RIS.MSS.16): one deletion message to the PFI about the last
version it filed; it unpublishes wherever that version went. On the direct MSSanté route, the optional
deletion notice goes to each recipient a direct copy reached; on the direct DMP route, one ITI-62 deletion
removes what the engine submitted. Nothing is sent when nothing ever left; everything is planned in one
task, and only what it returns is sent."""

from __future__ import annotations

from prefect import flow

from flows.names import DELETION_FLOW
from tasks.deliveries import plan_deletion
from tasks.dmp import send_dmp
from tasks.hl7 import publish_hl7
from tasks.mssante import send_mss
from tasks.report_state import publish_report_state


@flow(name=DELETION_FLOW, flow_run_name="delete-{report_id}", log_prints=False, persist_result=False)
async def report_deletion(report_id: str, version: int) -> dict[str, object]:
    """`version`: the report's last version when it was deleted."""
    plan = await plan_deletion(report_id, version)
    sent = {f"mss-{notice}": await send_mss(notice) for notice in plan.mss}
    if plan.dmp is not None:
        sent[f"dmp-{plan.dmp}"] = await send_dmp(plan.dmp)
    hl7 = "nothing had left the RIS"
    if plan.published is not None:
        hl7 = await publish_hl7(report_id, plan.published, "delete")
    await publish_report_state(report_id)
    return {"published_version": plan.published, "hl7": hl7} | sent
