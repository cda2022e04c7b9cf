"""Alerts for operations teams: Prefect automations that notify once when a channel starts failing and
once when it recovers, not once per report; and once for each identity-vigilance worklist item left open
longer than the site allows (rule 55).

Every delivery outcome is an event `ris.delivery.acknowledged|failed|read` labelled with its channel
(`tasks.report_state`: from each run, and from the ZAM listener of the engine's process as soon as a
receipt is applied). Per channel (`for_each`):
- "RIS channel failing": after a success, the first failure notifies; the next failures do not (the
  trigger waits for a success again);
- "RIS channel recovered": after a failure, the first success notifies.
The `identity-worklist` flow emits `ris.identity-worklist.overdue` once per item open past the site
setting `identity_worklist_alert_hours` ("RIS identity worklist item overdue" notifies each).
The notification goes through the site's notification block named `ris-alerts`, of any type the Prefect
UI offers (Custom Webhook, Slack, Microsoft Teams, SendGrid e-mail...); `RIS_ALERT_WEBHOOK_URL` makes
`ris up` save a Custom Webhook one. Without that block, no automation is created and `ris up` says so.
The message holds the channel, the delivery id, the item id and its kind, and the time: no patient data.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from uuid import UUID

from prefect.automations import AutomationCore
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

log = logging.getLogger("ris.alerts")
BLOCK_NAME = "ris-alerts"
WEBHOOK_ENV = "RIS_ALERT_WEBHOOK_URL"
FAILING = "RIS channel failing"
RECOVERED = "RIS channel recovered"
WORKLIST_OVERDUE = "RIS identity worklist item overdue"
OVERDUE_EVENT = "ris.identity-worklist.overdue"  # tasks.identity_worklist emits it (one per item)
SUCCESSES = {"ris.delivery.acknowledged", "ris.delivery.read"}
FAILURES = {"ris.delivery.failed"}
# How long a trigger stays armed after the event that armed it (a success for "failing", a failure for
# "recovered"): long enough that a channel quiet for months still alerts.
ARMED_FOR = dt.timedelta(days=365)
CHANNEL = "{{ event.resource['ris.channel'] }}"
DETAIL = "{{ event.resource.id }} at {{ event.occurred }}"


def automations(block_id: UUID) -> list[AutomationCore]:
    """The automations, notifying through the block `block_id`."""

    def trigger(after: set[str], expect: set[str]) -> EventTrigger:
        return EventTrigger(
            match={"prefect.resource.id": "ris.delivery.*"},
            after=after,
            expect=expect,
            for_each={"ris.channel"},
            posture=Posture.Reactive,
            threshold=1,
            within=ARMED_FOR,
        )

    return [
        AutomationCore(
            name=FAILING,
            description="Once when a channel's deliveries start failing (after a success).",
            trigger=trigger(SUCCESSES, FAILURES),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject=f"RIS: channel {CHANNEL} is failing",
                    body=f"Channel {CHANNEL} started failing: {DETAIL}. See `ris delivery failed`.",
                )
            ],
        ),
        AutomationCore(
            name=RECOVERED,
            description="Once when a failing channel delivers again.",
            trigger=trigger(FAILURES, SUCCESSES),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject=f"RIS: channel {CHANNEL} recovered",
                    body=f"Channel {CHANNEL} delivers again: {DETAIL}.",
                )
            ],
        ),
        AutomationCore(
            name=WORKLIST_OVERDUE,
            description="Once for each identity-vigilance worklist item open past the site's threshold.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "ris.worklist-item.*"},
                expect={OVERDUE_EVENT},
                posture=Posture.Reactive,
                threshold=1,
                within=dt.timedelta(0),
            ),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject="RIS: identity worklist item {{ event.resource.id }} waits",
                    body="Identity-vigilance item {{ event.resource.id }} "
                    "({{ event.resource['ris.worklist-kind'] }}) has been open for more than "
                    "{{ event.payload.threshold_hours }} h: see `ris identity worklist --open`.",
                )
            ],
        ),
    ]


async def _notification_block() -> UUID | None:
    """The id of the site's `ris-alerts` notification block (saved from RIS_ALERT_WEBHOOK_URL if set)."""
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        block = CustomWebhookNotificationBlock(
            name=BLOCK_NAME,
            url=url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            allow_private_urls=True,  # the site's own alerting endpoint is often on its internal network
        )
        return await block.asave(BLOCK_NAME, overwrite=True)
    async with get_client() as client:
        for document in await client.read_block_documents():
            if document.name == BLOCK_NAME and "notify" in (document.block_schema.capabilities or []):
                return document.id
    return None


async def ensure_alerts() -> list[UUID]:
    """Create or update the automations; [] when the site saved no `ris-alerts` block."""
    block_id = await _notification_block()
    if block_id is None:
        return []
    ids = []
    async with get_client() as client:
        for automation in automations(block_id):
            existing = await client.read_automations_by_name(automation.name)
            if existing:
                await client.update_automation(existing[0].id, automation)
                ids.append(existing[0].id)
            else:
                ids.append(await client.create_automation(automation))
    return ids


async def set_up_alerts() -> None:
    """What `ris up` does at each start: the alert automations exist (or one line says how to have them)."""
    try:
        created = await ensure_alerts()
    except Exception as exc:  # the engine runs without alerts rather than not at all
        log.warning("alerts not set up: %s", exc)
        return
    if created:
        log.info("alerts: channel failing / recovered notify through the block %r", BLOCK_NAME)
    else:
        log.info(
            "alerts off: save a notification block named %r in the Prefect UI (or set %s) and restart",
            BLOCK_NAME,
            WEBHOOK_ENV,
        )
