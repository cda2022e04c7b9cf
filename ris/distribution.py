"""Planning the deliveries of a validated version: one row per channel x recipient, created once.

Routing (`ris.routing`) decides who gets what and why not; this records it. Each row gets its
idempotency key here, once: re-planning keeps existing rows untouched, so a retry, a re-run or a crash
never mints a second key.
"""

from __future__ import annotations

from sqlmodel import Session

from ris import routing
from ris.ids import delivery_key
from ris.store import deliveries
from ris.store.models import Delivery
from ris.store.reports import load_bundle


def plan_version(session: Session, report_id: str, version: int, *, pfi: bool) -> dict[str, list[str]]:
    """Create the missing Delivery rows of this version; returns the statuses per channel (no addresses)."""
    bundle = load_bundle(session, report_id, version)
    for planned in routing.plan(bundle, pfi=pfi):
        if deliveries.find(session, report_id, version, planned.channel, planned.recipient):
            continue
        row = Delivery(
            report_id=report_id,
            version=version,
            channel=planned.channel,
            recipient=planned.recipient,
            route=planned.route,
            status=planned.status,
            idempotency_key=delivery_key(planned.channel),
        )
        session.add(row)
        deliveries.set_status(session, row, planned.status, planned.reason)
    statuses: dict[str, list[str]] = {}
    for row in deliveries.for_version(session, report_id, version):
        statuses.setdefault(row.channel.value, []).append(row.status.value)
    return statuses
