"""Manual MSSanté sending (RIS.MSS.20): one validated report to one professional the user chose, as one
delivery of the engine's direct route (its Message-ID minted once, its DSN and MDN read by `mss-receipts`,
a failure retried by `delivery-retry`).

`ris mss send` checks who asks, records the delivery and who asked, then starts the `mss-send` deployment
with the delivery's id (and its report and version, which name the run and hold the version's claim). A
run started from the Prefect UI gives `report_id`, `to` and optionally `version`: it is recorded as the
UI's, not as anyone's, and sends only to an address the imported directory lists."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows.names import MSS_SEND_FLOW
from tasks.mssante import open_manual_send, send_mss
from tasks.report_state import publish_report_state


def _run_name() -> str:
    """mss-send-<report id>[-v<version>], or mss-send-delivery-<id> (ids only, never the address)."""
    parameters = flow_run.parameters
    if report_id := parameters.get("report_id"):
        version = parameters.get("version")
        return f"mss-send-{report_id}" + (f"-v{version}" if version else "")
    return f"mss-send-delivery-{parameters.get('delivery_id')}"


@flow(name=MSS_SEND_FLOW, flow_run_name=_run_name, log_prints=False, persist_result=False)
async def mss_send(
    delivery_id: int | None = None,
    report_id: str | None = None,
    version: int | None = None,
    to: str | None = None,
) -> str:
    """Send the validated report `report_id` (its current version, or `version`) to the professional's
    MSSanté address `to`; `delivery_id`: the send `ris mss send` recorded. Returns the delivery's status."""
    send = await open_manual_send(delivery_id, report_id, to, version)
    status = await send_mss(send.delivery_id)
    await publish_report_state(send.report_id)
    return status
