"""What an announcement releases, as one step the flows share (dmp-xds.md §6)."""

from __future__ import annotations

from tasks.deliveries import plan_release
from tasks.hl7 import publish_hl7


async def release_announced(report_id: str, version: int) -> dict[str, str]:
    """Plan and send the visibility update and the patient's copy of a version whose announcement was
    recorded and whose own message the PFI filed; nothing otherwise. Returns the hl7 status per action."""
    actions = await plan_release(report_id, version)
    return {action: await publish_hl7(report_id, version, action) for action in actions}
