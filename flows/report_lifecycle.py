"""The lifecycle of one validated report version, from identity check to its deliveries.

With the site's PFI route, the PFI relays the DMP and MSSanté copies and its ZAM receipts update them;
MSSanté channels the site routes "direct" are sent by the engine, one task run per recipient mail, and a
DMP routed "direct" gets its ITI-41 submission (INVISIBLE_PATIENT while an announcement is pending). A
version n+1 is a replacement ("annule et remplace") to every recipient routing gives. A patient copy held
back for the announcement leaves here when the announcement was recorded meanwhile, otherwise with the
announcement's own run.
"""

from __future__ import annotations

from prefect import flow

from flows.names import LIFECYCLE_FLOW
from flows.release import release_announced, send_direct_dmp, send_direct_mss
from tasks.deliveries import plan_deliveries
from tasks.documents import build_documents
from tasks.hl7 import own_action, publish_hl7
from tasks.identity import check_identity
from tasks.report_state import publish_report_state


@flow(name=LIFECYCLE_FLOW, flow_run_name="report-{report_id}-v{version}", log_prints=False)
async def report_lifecycle(report_id: str, version: int) -> dict[str, object]:
    """Run name `report-<id>-v<version>`: ids only, never a patient's name."""
    identity = await check_identity(report_id, version)
    documents = await build_documents(report_id, version)
    planned = await plan_deliveries(report_id, version)
    outcome: dict[str, object] = {
        "ins_transmissible": identity["ins_transmissible"],
        "document_id": documents["document_id"],
        "planned": planned,
    }
    if "pending" in planned.get("hl7", []):
        outcome["hl7"] = await publish_hl7(report_id, version, own_action(version))
    direct = await send_direct_mss(report_id, version, (own_action(version),))
    if direct:
        outcome["mss"] = direct
    dmp = await send_direct_dmp(report_id, version, (own_action(version),))
    if dmp:
        outcome["dmp"] = dmp
    if "waiting_announcement" in planned.get("mss-patient", []):
        outcome["released"] = await release_announced(report_id, version)
    await publish_report_state(report_id)
    return outcome
