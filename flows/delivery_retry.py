"""An administrator's retry of one failed delivery: the same message, the same idempotency key."""

from __future__ import annotations

from prefect import flow

from flows.names import RETRY_FLOW
from flows.release import release_announced
from tasks.hl7 import own_action, publish_hl7
from tasks.report_state import publish_report_state


@flow(name=RETRY_FLOW, flow_run_name="retry-hl7-{report_id}-v{version}", log_prints=False)
async def retry_delivery(report_id: str, version: int, action: str | None = None) -> str:
    """Send the version's HL7 message to the PFI again (same MSH-10, so the PFI cannot file it twice);
    the copies it relays go back to pending and follow its outcome. Returns the delivery status. Once it
    is filed, what an announcement recorded meanwhile released follows. `action`: the failed message's
    (initial, replace, visibility, release, delete); by default the version's own message."""
    status = await publish_hl7(report_id, version, action or own_action(version))
    if action != "delete":
        await release_announced(report_id, version)
    await publish_report_state(report_id)
    return status
