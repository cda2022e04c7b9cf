"""The ZAM listener's sink in `ris up` and `ris hl7 listen`: each receipt's outcome becomes, as soon as it
is applied, the event the report's next run would emit (`ris.operations.delivery_events`), so the alerts
(`deployments.alerts`) need not wait for that run."""

from __future__ import annotations

from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

from ris.channels.hl7.listener import AppliedOutcome
from ris.operations.delivery_events import delivery_event


def emit_applied(outcome: AppliedOutcome) -> None:
    """A receipt's outcome as an event, when this process talks to a Prefect API."""
    if not PREFECT_API_URL.value():
        return
    event = delivery_event(
        outcome.delivery_id, outcome.key, outcome.channel, outcome.action, outcome.status, outcome.report_id
    )
    if event is not None:
        emit_event(**event)
