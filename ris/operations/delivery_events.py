"""The operations plane's event of a delivery outcome, as plain data: `ris.delivery.<status>` about one
delivery, ids only. The lifecycle's runs (`tasks.report_state`) and the ZAM listener of the CLI
(`cli.receipt_events`) emit the same event from it; the alerts (`deployments.alerts`) match on it."""

from __future__ import annotations

import uuid
from typing import Any

OUTCOMES = ("acknowledged", "failed", "read")
EVENT_NAMESPACE = uuid.UUID("5c1d3f0e-8a4b-4f6e-9d2a-7b3c1e0f9a21")


def delivery_event(
    delivery_id: int, key: str, channel: str, action: str, status: str, report_id: str
) -> dict[str, Any] | None:
    """The arguments of the event about one delivery's outcome (resource: its id; labels: channel and
    action), None for a status that is no outcome. The event id is derived from the delivery's
    idempotency key (unique for good, unlike a row id) and its status, so that the outcome is recorded once
    however many runs or listeners report it."""
    if status not in OUTCOMES:
        return None
    return {
        "event": f"ris.delivery.{status}",
        "resource": {
            "prefect.resource.id": f"ris.delivery.{delivery_id}",
            "ris.channel": channel,
            "ris.action": action,
        },
        "related": [{"prefect.resource.id": f"ris.report.{report_id}", "prefect.resource.role": "report"}],
        "id": uuid.uuid5(EVENT_NAMESPACE, f"{key}:{status}"),
    }
