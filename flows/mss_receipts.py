"""Scheduled: the receipts (DSN, MDN) of the MSSanté mails the engine sent itself, read over IMAP from the
application mailbox; each moves its delivery to acknowledged, read or failed (RIS.MSS.14, RIS.MSS.18).
A site that sends no MSSanté copy itself (PFI route), or has no mailbox for the receipts, has nothing to
read: the run completes and its log says what to configure."""

from __future__ import annotations

from prefect import flow

from flows.names import MSS_RECEIPTS_FLOW
from tasks.mssante import collect_mss_receipts


@flow(name=MSS_RECEIPTS_FLOW, flow_run_name="mss-receipts", log_prints=False)
async def mss_receipts() -> dict[str, int]:
    return await collect_mss_receipts()
