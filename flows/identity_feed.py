"""identity-feed: send the pending PAM-FR identity messages (A31 / A47) of the outbox to the PFI.

Patients are sent side by side; one patient's messages go one after the other in creation order, and a
message still pending after its retries holds the later ones back (an A47 never overtakes an earlier
A31). A refused (AR) message is final and does not hold the queue: the later messages carry the newer
state. The result holds counts only. While the site has no PFI endpoint (or site settings) saved, the
messages wait in the outbox: the run completes and its log says what to configure.
"""

from __future__ import annotations

import asyncio

from prefect import flow

from flows.names import IDENTITY_FEED_FLOW
from ris.store.models import OutboundStatus
from tasks.identity_feed import pending_queues, send_outbound

ERROR = "error"  # the send task itself ended in error: its message stays pending in the outbox


async def _send_in_order(message_ids: list[int], counts: dict[str, int]) -> None:
    for n, message_id in enumerate(message_ids):
        state = await send_outbound(message_id, return_state=True)
        status = await state.aresult(raise_on_failure=False) if state.is_completed() else ERROR
        counts[status] = counts.get(status, 0) + 1
        if status in (OutboundStatus.pending, ERROR):
            counts["held"] += len(message_ids) - n - 1
            return


@flow(name=IDENTITY_FEED_FLOW, flow_run_name="identity-feed")
async def identity_feed() -> dict:
    """Send every pending outbox message; returns {patients, acknowledged, failed, pending, held, error}."""
    queues = await pending_queues()
    counts = {"patients": len(queues), **{s.value: 0 for s in OutboundStatus}, "held": 0, ERROR: 0}
    await asyncio.gather(*(_send_in_order(ids, counts) for ids in queues))
    return counts
