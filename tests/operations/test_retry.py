"""An administrator retries what a receipt reported failed, against the sandbox PFI and our ZAM listener:
the copies leave again alone in a new message (new MSH-10), a professional's new address is used and
audited, nothing delivered is sent again, and the retry run is linked to the run it retries."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName
from sqlmodel import select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from flows.delivery_retry import retry_delivery
from flows.report_lifecycle import report_lifecycle
from ris.channels.hl7.listener import ZamListener
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus
from sandbox.pfi import PfiSandbox
from sandbox.pfi.checks import check
from tasks.report_state import RETRY_OF, artifact_key
from tests import factories

pytestmark = pytest.mark.slow
ADMIN = "10001234567"
REACHED = {"sent", "acknowledged", "read"}


@pytest.fixture
async def pfi(prefect_server, db_url):
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as peer,
    ):
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1", port=peer.port, receipt_port=listener.port, ack_timeout_s=10
        ).asave(DEFAULT_NAME, overwrite=True)
        yield peer


def _rows(report_id: str) -> dict[tuple[Channel, str, str], Delivery]:
    with session_scope() as session:
        return {(d.channel, d.recipient, d.action): d for d in deliveries.for_report(session, report_id)}


async def _until(report_id: str, done, timeout: float = 15.0) -> dict:
    """Wait for the ZAMs (sent after the ACK) to land."""
    async with asyncio.timeout(timeout):
        while not done(rows := _rows(report_id)):
            await asyncio.sleep(0.1)
    return rows


def _filed(pfi) -> list:
    found = []
    for entry in pfi.received:
        if entry.answer == "AA" and not entry.duplicate:
            facts, problem = check(entry.raw, matrix_check=False)
            assert problem is None, problem
            found.append(facts)
    return found


async def test_failed_receipts_leave_again_alone_in_a_new_message_then_nothing_twice(pfi):
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=1)
        [(other, _)] = [(c, role) for c, role in bundle.recipients if role == "copy"]
    rid, bounced = bundle.report.id, other.mss_address
    pfi.dmp_closed = True
    pfi.mss_errors = {bounced: "550"}  # that mailbox was closed
    await report_lifecycle(rid, 1)
    rows = await _until(
        rid,
        lambda r: (
            r[(Channel.dmp, "dmp", "initial")].status is DeliveryStatus.failed
            and r[(Channel.mss_ps, bounced, "initial")].status is DeliveryStatus.failed
        ),
    )
    copy = rows[(Channel.mss_ps, bounced, "initial")]
    assert "DMPClosed" in rows[(Channel.dmp, "dmp", "initial")].reason and "550" in copy.reason
    first = _filed(pfi)
    assert len(first) == 1 and first[0].flags["DESTDMP"] == "Y"

    # The DMP is open again: only the DMP copy leaves, in a new message.
    pfi.dmp_closed, pfi.mss_errors = False, {}
    outcome = await retry_delivery(
        **factories.retry_request(ADMIN, "DMP reopened by the patient", report_id=rid, channel=Channel.dmp)
    )
    dmp_id = rows[(Channel.dmp, "dmp", "initial")].id
    assert set(outcome) == {str(dmp_id)} and outcome[str(dmp_id)] in REACHED
    second = _filed(pfi)[1]
    assert second.control_id != first[0].control_id
    assert second.flags["DESTDMP"] == "Y" and second.flags["DESTMSSANTEPS"] == "N"
    assert second.flags["DESTMSSANTEPAT"] == "N" and second.recipients == []
    rows = await _until(
        rid, lambda r: r[(Channel.dmp, "dmp", "initial")].status is DeliveryStatus.acknowledged
    )
    assert rows[(Channel.hl7, "pfi", "initial-r1")].status is DeliveryStatus.acknowledged

    # The other professional's mailbox moved: the bounced copy goes to the new address, alone.
    new = "chloe.martin.new@hopital-demo.mssante.fr"
    outcome = await retry_delivery(
        **factories.retry_request(ADMIN, "address changed", delivery_ids=[copy.id], to=new)
    )
    assert outcome[str(copy.id)] in REACHED
    third = _filed(pfi)[2]
    assert [r.address for r in third.recipients] == [new] and third.flags["DESTDMP"] == "N"
    rows = await _until(rid, lambda r: r[(Channel.mss_ps, new, "initial")].status is DeliveryStatus.read)

    # Nothing failed any more: a batch finds nothing and sends nothing.
    assert await retry_delivery(**factories.retry_request(ADMIN, "again", report_id=rid)) == {}
    assert len(_filed(pfi)) == 3 and pfi.duplicates == 0
    with session_scope() as session:
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.action.in_(["delivery.retry", "delivery.recipient_changed"]))
        ).all()
    assert {(a.action, a.object_id, a.actor) for a in audited} == {
        ("delivery.retry", str(dmp_id), ADMIN),
        ("delivery.retry", str(copy.id), ADMIN),
        ("delivery.recipient_changed", str(copy.id), ADMIN),
    }
    requester = next(d for (c, r, _), d in rows.items() if c is Channel.mss_ps and r != new)
    assert requester.status is DeliveryStatus.read and requester.attempts == 0  # delivered once, not resent

    # The retry runs point at the lifecycle run, and the report's artifact lists them all.
    async with get_client() as client:
        [lifecycle] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"report-{rid}-v1"]))
        )
        retries = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"retry-report-{rid}"]))
        )
        [artifact] = await client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(rid)]))
        )
    assert retries and all(RETRY_OF + str(lifecycle.id) in r.tags for r in retries)
    assert {f"report:{rid}", "channel:dmp", "channel:hl7"} <= set(lifecycle.tags)
    assert any(t.startswith("site:") for t in lifecycle.tags)
    assert str(lifecycle.id) in artifact.description and str(retries[0].id) in artifact.description
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert {"initial", "initial-r1", "initial-r2"} <= {row["action"] for row in table}
