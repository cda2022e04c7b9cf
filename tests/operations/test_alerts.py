"""Alerts: the ZAM listener's outcomes become Prefect events (ids only); `ris up` creates the two
automations once; their notification reaches a real local webhook receiver; and on a full Prefect server
(the one `ris up` runs) a channel notifies once when it starts failing and once when it recovers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import PrefectEventsClient
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.prefect_server import PrefectServer
from cli.receipt_events import emit_applied
from deployments import alerts
from ris.channels.hl7 import listener
from ris.lifecycle import distribution
from ris.operations.delivery_events import EVENT_NAMESPACE
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel, DeliveryStatus
from tests import factories


class Receiver:
    """A webhook receiver on loopback that keeps the JSON bodies it is posted."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def _zam_z01_refused(control_id: str) -> str:
    return "\r".join(
        [
            "MSH|^~\\&|PFI|PFI-DEMO|RIS|FINESS|20261128101010||ZAM^Z01^ZAM_Z01|ZAM-T1|P|2.6",
            "EVN||20261128101010",
            f"OBX|1|CWE|ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM|{control_id}|"
            "N^^expandedYes-NoIndicator||||||F",
            "ERR|||207^Application internal error^messageErrorCondition|E|DMPClosed^DMP fermé^DMPERRORCODE",
        ]
    )


async def _events(event_id: str) -> list[dict]:
    """The event of this id (the tests share one Prefect server: row ids repeat across their databases)."""
    async with get_client() as client:
        for _ in range(100):  # events are persisted in batches
            response = await client._client.post(
                "/events/filter", json={"filter": {"id": {"id": [event_id]}}, "limit": 10}
            )
            if found := response.json()["events"]:
                return found
            await asyncio.sleep(0.1)
    return []


async def test_a_receipt_applied_by_the_listener_becomes_an_event_with_ids_only(prefect_server, db_url):
    with session_scope() as session:
        bundle = factories.validated_report(session)
        rid = bundle.report.id
        distribution.plan_version(session, rid, 1, pfi=True)
        rows = {d.channel: d for d in deliveries.for_version(session, rid, 1)}
        deliveries.set_status(session, rows[Channel.hl7], DeliveryStatus.acknowledged, "ACK AA")
        deliveries.set_status(session, rows[Channel.dmp], DeliveryStatus.sent, "relayed")
        control_id, dmp = rows[Channel.hl7].idempotency_key, rows[Channel.dmp].id
        dmp_key = rows[Channel.dmp].idempotency_key
        secrets = [bundle.patient.birth_name, bundle.patient.ins_matricule, bundle.patient.city]
    heard: list[listener.AppliedOutcome] = []

    def sink(outcome: listener.AppliedOutcome) -> None:  # what `ris up` gives its listener, and a witness
        heard.append(outcome)
        emit_applied(outcome)

    verdict = await asyncio.to_thread(listener.process, _zam_z01_refused(control_id), db_url, on_outcome=sink)
    assert verdict.code == "AA"
    assert [(o.delivery_id, o.channel, o.status) for o in heard] == [(dmp, "dmp", "failed")]
    [event] = await _events(str(uuid.uuid5(EVENT_NAMESPACE, f"{dmp_key}:failed")))
    assert event["resource"]["prefect.resource.id"] == f"ris.delivery.{dmp}"
    assert event["event"] == "ris.delivery.failed" and event["resource"]["ris.channel"] == "dmp"
    assert event["related"][0]["prefect.resource.id"] == f"ris.report.{rid}"
    assert not [s for s in secrets if s and s in json.dumps(event, ensure_ascii=False)]


def _render(template: str, event: Event) -> str:
    return ImmutableSandboxedEnvironment().from_string(template).render(event=event)


async def test_ris_up_creates_the_automations_once_and_their_notification_reaches_the_webhook(
    prefect_server, receiver, monkeypatch
):
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    assert await alerts.ensure_alerts() == []  # no notification block saved: nothing to notify with
    monkeypatch.setenv(alerts.WEBHOOK_ENV, receiver.url)
    first = await alerts.ensure_alerts()
    assert len(first) == 3 and await alerts.ensure_alerts() == first  # updated in place, not duplicated

    async with get_client() as client:
        [failing] = await client.read_automations_by_name(alerts.FAILING)
        [recovered] = await client.read_automations_by_name(alerts.RECOVERED)
    assert failing.trigger.after == recovered.trigger.expect == alerts.SUCCESSES
    assert failing.trigger.expect == recovered.trigger.after == alerts.FAILURES
    assert failing.trigger.for_each == {"ris.channel"} and failing.trigger.threshold == 1
    [action] = failing.actions
    block = await CustomWebhookNotificationBlock.aload(alerts.BLOCK_NAME)
    assert action.block_document_id == block._block_document_id

    event = Event(
        event="ris.delivery.failed",
        resource={"prefect.resource.id": "ris.delivery.42", "ris.channel": "dmp", "ris.action": "initial"},
    )
    await block.anotify(_render(action.body, event), _render(action.subject, event))
    [posted] = receiver.bodies
    assert posted["subject"] == "RIS: channel dmp is failing"
    assert posted["body"].startswith("Channel dmp started failing: ris.delivery.42 at ")


async def _until(receiver: Receiver, count: int, timeout: float = 60) -> list[dict]:
    async with asyncio.timeout(timeout):
        while len(receiver.bodies) < count:
            await asyncio.sleep(0.2)
    return receiver.bodies


@pytest.mark.slow
async def test_a_channel_notifies_once_when_it_starts_failing_and_once_when_it_recovers(
    tmp_path: Path, receiver, monkeypatch
):
    server = await PrefectServer(tmp_path / "prefect", 4300).start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            monkeypatch.setenv(alerts.WEBHOOK_ENV, receiver.url)
            assert len(await alerts.ensure_alerts()) == 3  # failing, recovered, worklist item overdue
            await asyncio.sleep(2)  # the triggers service loads the new automations

            async def outcome(status: str, channel: str = "dmp") -> None:
                async with PrefectEventsClient(server.api_url) as events:
                    await events.emit(
                        Event(
                            occurred=dt.datetime.now(dt.UTC),
                            event=f"ris.delivery.{status}",
                            resource={
                                "prefect.resource.id": f"ris.delivery.{uuid4().int % 10**6}",
                                "ris.channel": channel,
                            },
                            id=uuid4(),
                        )
                    )
                await asyncio.sleep(0.5)

            await outcome("acknowledged")
            await outcome("failed")
            [failing] = await _until(receiver, 1)
            for _ in range(3):  # more reports failing on the same channel: no more notifications
                await outcome("failed")
            await outcome("acknowledged", channel="mss-ps")  # another channel is unaffected
            await asyncio.sleep(3)
            assert len(receiver.bodies) == 1 and failing["subject"] == "RIS: channel dmp is failing"
            await outcome("read")
            await outcome("acknowledged")
            recovered = (await _until(receiver, 2))[1]
            await asyncio.sleep(3)
    finally:
        server.stop()
    assert recovered["subject"] == "RIS: channel dmp recovered" and len(receiver.bodies) == 2
