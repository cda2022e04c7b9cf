"""What an announcement releases, as one step the flows share (dmp-xds.md §6), and the direct MSSanté
and DMP sends the flows share."""

from __future__ import annotations

import asyncio

from tasks.deliveries import plan_release
from tasks.dmp import direct_dmp_to_send, send_dmp
from tasks.hl7 import publish_hl7
from tasks.mssante import direct_mss_to_send, send_mss


async def send_direct_mss(report_id: str, version: int, actions: tuple[str, ...]) -> dict[str, str]:
    """Send the version's direct MSSanté mails of `actions`, one task run per recipient, concurrently.
    Returns the status per delivery id."""
    ids = await direct_mss_to_send(report_id, version, actions)
    statuses = await asyncio.gather(*(send_mss(delivery_id) for delivery_id in ids))
    return {f"mss-{delivery_id}": status for delivery_id, status in zip(ids, statuses, strict=True)}


async def send_direct_dmp(report_id: str, version: int, actions: tuple[str, ...]) -> dict[str, str]:
    """Send the version's direct DMP submissions of `actions` (one task run each). Returns the status per
    delivery id."""
    ids = await direct_dmp_to_send(report_id, version, actions)
    return {f"dmp-{delivery_id}": await send_dmp(delivery_id) for delivery_id in ids}


async def release_announced(report_id: str, version: int) -> dict[str, str]:
    """Plan and send the visibility update and the patient's copy of a version whose announcement was
    recorded: through the PFI once it filed the version's own message, directly (DMP ITI-57, MSSanté) once
    the direct copy reached its peer. Returns the status per hl7 action and per direct delivery."""
    actions = await plan_release(report_id, version)
    outcome = {action: await publish_hl7(report_id, version, action) for action in actions}
    outcome |= await send_direct_dmp(report_id, version, ("visibility",))
    return outcome | await send_direct_mss(report_id, version, ("release",))
