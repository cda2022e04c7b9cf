"""What an announcement releases, as one step the flows share (dmp-xds.md §6), and the direct MSSanté
and DMP sends the flows share. The deliveries to send come from what planning returned: a route the
site does not use starts no task."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tasks.deliveries import plan_release
from tasks.dmp import send_dmp
from tasks.hl7 import publish_hl7
from tasks.mssante import send_mss


async def send_direct_mss(delivery_ids: Sequence[int]) -> dict[str, str]:
    """Send direct MSSanté mails, one task run per recipient, concurrently. Returns the status per
    delivery id; one send that ended in an error does not stop the others (`_settled`)."""
    statuses = await asyncio.gather(*(send_mss(i) for i in delivery_ids), return_exceptions=True)
    return {f"mss-{i}": _settled(status) for i, status in zip(delivery_ids, statuses, strict=True)}


async def send_direct_dmp(delivery_ids: Sequence[int]) -> dict[str, str]:
    """Send direct DMP submissions, one task run each, in order. Returns the status per delivery id; one
    send that ended in an error does not stop the next."""
    outcome = {}
    for delivery_id in delivery_ids:
        try:
            outcome[f"dmp-{delivery_id}"] = await send_dmp(delivery_id)
        except Exception as exc:
            outcome[f"dmp-{delivery_id}"] = _settled(exc)
    return outcome


def _settled(status: str | BaseException) -> str:
    """A send's status. A send task ends in an error only when even its copy's failure could not be
    recorded (the database out of reach past its last try): its failed task run shows it, and the
    report's other copies still go."""
    if isinstance(status, BaseException):
        if not isinstance(status, Exception):
            raise status  # cancelled: the run stops
        return f"error: {type(status).__name__}"
    return status


async def release_announced(report_id: str, version: int) -> dict[str, str]:
    """Plan and send the visibility update and the patient's copy of a version whose announcement was
    recorded: through the PFI once it filed the version's own message, directly (DMP ITI-57, MSSanté) once
    the direct copy reached its peer. Returns the status per hl7 action and per direct delivery."""
    plan = await plan_release(report_id, version)
    outcome = {action: await publish_hl7(report_id, version, action) for action in plan.hl7}
    outcome |= await send_direct_dmp(plan.dmp)
    return outcome | await send_direct_mss(plan.mss)
