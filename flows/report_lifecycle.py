"""The lifecycle of one validated report version, from identity check to its deliveries.

With the site's PFI route, the PFI relays the DMP and MSSanté copies and its ZAM receipts update them;
MSSanté channels the site routes "direct" are sent by the engine, one task run per recipient mail, and a
DMP routed "direct" gets its ITI-41 submission (INVISIBLE_PATIENT while an announcement is pending). A
version n+1 is a replacement ("annule et remplace") to every recipient routing gives. A patient copy held
back for the announcement leaves here when the announcement was recorded before the deliveries were
planned, otherwise with the announcement's own run.

Planning says what is left to send: a step with nothing to do (a route the site does not use, a message
already filed, nothing held back) starts no task run.
"""

from __future__ import annotations

from prefect import flow
from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH

from flows.names import LIFECYCLE_FLOW
from flows.release import release_announced, send_direct_dmp, send_direct_mss
from tasks.deliveries import plan_deliveries
from tasks.documents import build_documents
from tasks.hl7 import own_action, publish_hl7
from tasks.identity import check_identity
from tasks.report_state import publish_report_state


# The run's outcome is in the engine's database, the state of record: Prefect keeps no copy of it. Naming
# the storage Prefect would otherwise look up saves two requests to its server at the start of every run;
# nothing is written there.
@flow(
    name=LIFECYCLE_FLOW,
    flow_run_name="report-{report_id}-v{version}",
    log_prints=False,
    persist_result=False,
    result_storage=PREFECT_RESULTS_LOCAL_STORAGE_PATH.value(),
)
async def report_lifecycle(report_id: str, version: int) -> dict[str, object]:
    """Run name `report-<id>-v<version>`: ids only, never a patient's name."""
    identity = await check_identity(report_id, version)
    documents = await build_documents(report_id, version)
    plan = await plan_deliveries(report_id, version)
    outcome: dict[str, object] = {
        "ins_transmissible": identity["ins_transmissible"],
        "document_id": documents["document_id"],
        "planned": plan.statuses,
    }
    if plan.hl7:
        outcome["hl7"] = await publish_hl7(report_id, version, own_action(version))
    if plan.mss:
        outcome["mss"] = await send_direct_mss(plan.mss)
    if plan.dmp:
        outcome["dmp"] = await send_direct_dmp(plan.dmp)
    if plan.release:
        outcome["released"] = await release_announced(report_id, version)
    await publish_report_state(report_id)
    return outcome
