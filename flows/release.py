"""What an announcement releases, as one step the flows share (dmp-xds.md §6), and the direct MSSanté
sends the flows share."""

from __future__ import annotations

import asyncio

from tasks.deliveries import plan_release
from tasks.hl7 import publish_hl7
from tasks.mssante import direct_mss_to_send, send_mss


async def send_direct_mss(report_id: str, version: int, actions: tuple[str, ...]) -> dict[str, str]:
    """Send the version's direct MSSanté mails of `actions`, one task run per recipient, concurrently.
    Returns the status per delivery id."""
    ids = await direct_mss_to_send(report_id, version, actions)
    statuses = await asyncio.gather(*(send_mss(delivery_id) for delivery_id in ids))
    return {f"mss-{delivery_id}": status for delivery_id, status in zip(ids, statuses, strict=True)}


async def release_announced(report_id: str, version: int) -> dict[str, str]:
    """Plan and send the visibility update and the patient's copy of a version whose announcement was
    recorded and whose own message the PFI filed; nothing otherwise. Returns the hl7 status per action."""
    actions = await plan_release(report_id, version)
    outcome = {action: await publish_hl7(report_id, version, action) for action in actions}
    return outcome | await send_direct_mss(report_id, version, ("release",))
