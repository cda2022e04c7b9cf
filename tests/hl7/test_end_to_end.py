"""publish-hl7 over real sockets: engine -> sandbox PFI (MLLP, ACK) -> ZAM -> our listener -> store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import Session, select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from ris.channels.hl7.client import Hl7Transient
from ris.channels.hl7.listener import ZamListener
from ris.channels.hl7.message import Hl7RuleError
from ris.channels.hl7.publish import RELAY_FAILED
from ris.hl7v2 import mllp
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    ExchangeChannel,
    InboundMessage,
    PartnerExchange,
)
from sandbox.pfi import PfiSandbox
from tasks.hl7 import publish_hl7
from tests import factories
from tests.hl7.conftest import hl7_row, plan, with_documents

pytestmark = pytest.mark.slow


@dataclass
class Site:
    pfi: PfiSandbox
    listener: ZamListener


async def configure(pfi: PfiSandbox, *, timeout: float = 10.0, settings: SiteSettings | None = None) -> None:
    await PfiEndpoint(host="127.0.0.1", port=pfi.port, ack_timeout_s=timeout).save(
        DEFAULT_NAME, overwrite=True
    )
    await SiteSettingsBlock(settings=settings or SiteSettings()).save(DEFAULT_NAME, overwrite=True)


@pytest.fixture
async def site(prefect_server, db_url: str) -> AsyncIterator[Site]:
    async with (
        ZamListener(me=factories.SITE_PARTY, database_url=db_url) as listener,
        PfiSandbox(zam_port=listener.port, zam_delay_s=0.05) as pfi,
    ):
        await configure(pfi)
        yield Site(pfi, listener)


def published(session: Session, **report_fields) -> tuple[str, list[Delivery]]:
    bundle = factories.validated_report(session, **report_fields)
    with_documents(session, bundle)
    return bundle.report.id, plan(session, bundle)


def z01(control_id: str, original: str) -> str:
    """A ZAM^Z01 (DMP receipt) as the PFI would send it."""
    return "\r".join(
        [
            f"MSH|^~\\&|PFI|PFI-DEMO|RIS-DEMO|750000001|20260101120000||ZAM^Z01^ZAM_Z01|{control_id}|P|2.6|||||"
            "FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
            "EVN||20260101120000",
            f"OBX|1|CWE|ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM|{original}"
            "|Y^^expandedYes-NoIndicator"
            "||||||F",
        ]
    )


def statuses(session: Session, report_id: str) -> dict[tuple[str, str], str]:
    session.expire_all()
    return {
        (d.channel.value, d.recipient): d.status.value for d in deliveries.for_version(session, report_id, 1)
    }


async def test_aa_then_zam_receipts_walk_every_relayed_delivery(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=1)
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert len(site.pfi.documents) == 1
    relayed = {k: v for k, v in statuses(session, report_id).items() if k[0] != "hl7"}
    assert set(relayed.values()) <= {"sent", "acknowledged", "read"}  # receipts may already be landing

    # Z01 (DMP) + Z02 and Z03 for the requester, the copy and the patient.
    zams = await site.pfi.wait_for_zams(7)
    assert sorted(t for t, _ in zams) == ["Z01", "Z02", "Z02", "Z02", "Z03", "Z03", "Z03"]
    assert {code for _, code in zams} == {"AA"}
    final = statuses(session, report_id)
    assert final[("hl7", "pfi")] == "acknowledged"
    assert final[("dmp", "dmp")] == "acknowledged"
    assert [v for (c, _), v in final.items() if c == "mss-ps"] == ["read", "read"]
    assert final[("mss-patient", "patient")] == "read"
    inbound = session.exec(select(InboundMessage)).all()
    assert len(inbound) == 7 and {m.outcome for m in inbound} == {"accepted"}
    dmp = next(r for r in rows if r.channel is Channel.dmp)
    timeline = [e.status.value for e in deliveries.timeline(session, dmp.id)]
    assert timeline == ["pending", "sent", "acknowledged"]
    # INS rule 31: the PFI is recorded as a partner that received the INS.
    assert session.exec(select(PartnerExchange)).one().channel is ExchangeChannel.hl7


async def test_ae_is_transient_and_the_retry_reuses_the_same_msh10(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=0)
    site.pfi.fail_next("AE")
    with pytest.raises(Hl7Transient, match="MSA AE: ERR-3 207"):
        await publish_hl7.fn(report_id, 1)
    hl7 = session.get(Delivery, hl7_row(rows).id)
    session.refresh(hl7)
    assert (hl7.status, hl7.attempts) == (DeliveryStatus.pending, 1) and "AE" in hl7.last_error
    assert site.pfi.documents == {}
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert [r.control_id for r in site.pfi.received] == [hl7.idempotency_key] * 2
    assert [r.answer for r in site.pfi.received] == ["AE", "AA"]
    assert len(site.pfi.documents) == 1 and site.pfi.duplicates == 0


async def test_prefect_retries_transient_faults_and_gives_up_as_failed(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=0)
    site.pfi.fail_next("AE", "AE")
    fast = publish_hl7.with_options(retry_delay_seconds=0.05, retry_jitter_factor=None)
    assert await fast(report_id, 1) == "acknowledged"
    session.expire_all()
    assert session.get(Delivery, hl7_row(rows).id).attempts == 3
    assert [r.answer for r in site.pfi.received] == ["AE", "AE", "AA"]

    other_id, other_rows = published(session, copies=0)
    site.pfi.fail_next("AE", "AE")
    once = publish_hl7.with_options(retries=1, retry_delay_seconds=0.05, retry_jitter_factor=None)
    assert await once(other_id, 1) == "failed"
    session.expire_all()
    hl7 = session.get(Delivery, hl7_row(other_rows).id)
    assert hl7.attempts == 2 and hl7.reason.startswith("no ACK AA after 2 attempts")
    relayed = [
        session.get(Delivery, r.id) for r in other_rows if r.route == "pfi" and r.channel is not Channel.hl7
    ]
    pending_before = [r for r in relayed if r.reason and r.reason.startswith(RELAY_FAILED)]
    assert pending_before and {r.status for r in pending_before} == {DeliveryStatus.failed}


async def test_ar_fails_at_once_with_the_err_reason(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=0)
    site.pfi.fail_next("AR")
    assert await publish_hl7.with_options(retry_delay_seconds=0.05)(report_id, 1) == "failed"
    assert len(site.pfi.received) == 1  # no retry
    session.expire_all()
    hl7 = session.get(Delivery, hl7_row(rows).id)
    assert hl7.status is DeliveryStatus.failed and "MSA AR: ERR-3 207" in hl7.reason
    dmp = next(session.get(Delivery, r.id) for r in rows if r.channel is Channel.dmp)
    assert dmp.status is DeliveryStatus.failed and dmp.reason.startswith(RELAY_FAILED)

    # An administrator's retry sends the same MSH-10 again and the relayed copies go with it.
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert [r.control_id for r in site.pfi.received] == [hl7.idempotency_key] * 2
    session.refresh(dmp)
    assert dmp.status in (DeliveryStatus.sent, DeliveryStatus.acknowledged)


async def test_lost_ack_times_out_and_the_retry_is_a_flagged_duplicate(site: Site, session: Session) -> None:
    await configure(site.pfi, timeout=0.5)
    report_id, rows = published(session, copies=0)
    site.pfi.fail_next("lost_ack")  # the PFI keeps the document but its ACK never comes
    with pytest.raises(Hl7Transient, match=r"no ACK within 0\.5 s"):
        await publish_hl7.fn(report_id, 1)
    await configure(site.pfi, timeout=10)  # the retry must not lose its ACK to a busy CI machine
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert len(site.pfi.documents) == 1 and site.pfi.duplicates == 1
    assert site.pfi.received[1].duplicate and site.pfi.received[1].control_id == hl7_row(rows).idempotency_key
    zams = await site.pfi.wait_for_zams(5)  # Z01, Z02 + Z03 for requester and patient: once, not twice
    assert len(zams) == 5


async def test_slow_pfi_beyond_the_timeout_is_transient(site: Site, session: Session) -> None:
    await configure(site.pfi, timeout=0.3)
    report_id, _ = published(session, copies=0)
    site.pfi.delay_s = 0.8
    with pytest.raises(Hl7Transient, match="no ACK within"):
        await publish_hl7.fn(report_id, 1)


async def test_dmp_closed_and_mss_bounce_fail_their_deliveries(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=0)
    site.pfi.dmp_closed = True
    requester = next(r.recipient for r in rows if r.channel is Channel.mss_ps)
    site.pfi.mss_errors[requester] = "550"
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    await site.pfi.wait_for_zams(4)  # Z01 N, Z02 N (requester), Z02 + Z03 (patient)
    session.expire_all()
    dmp = next(session.get(Delivery, r.id) for r in rows if r.channel is Channel.dmp)
    assert dmp.status is DeliveryStatus.failed and "DMPClosed" in dmp.reason
    ps = next(session.get(Delivery, r.id) for r in rows if r.channel is Channel.mss_ps)
    assert ps.status is DeliveryStatus.failed and "550" in ps.reason
    assert statuses(session, report_id)[("mss-patient", "patient")] == "read"


async def test_matrix_refusal_sends_nothing(site: Site, session: Session) -> None:
    strict = SiteSettings()
    strict.hl7.matrix_check = "reject"
    strict.hl7.agreed_combinations = []  # nothing agreed beyond the matrix with this PFI
    await configure(site.pfi, settings=strict)
    report_id, rows = published(session, mask_ps=True)  # IG Exemple 1: outside the matrix
    assert await publish_hl7.fn(report_id, 1) == "failed"
    assert site.pfi.received == []
    session.expire_all()
    assert "outside the MSSanté matrix" in session.get(Delivery, hl7_row(rows).id).reason


async def test_delivered_message_is_never_sent_twice(site: Site, session: Session) -> None:
    report_id, _ = published(session, copies=0)
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    assert len(site.pfi.received) == 1


async def test_zam_with_unknown_correlation_gets_ae_and_changes_nothing(site: Site, session: Session) -> None:
    zam = z01("Z-UNKNOWN", "nobody")
    answer = await mllp.exchange("127.0.0.1", site.listener.port, zam, timeout=5)
    assert "MSA|AE|Z-UNKNOWN" in answer and "204^Unknown key identifier" in answer
    stored = session.exec(select(InboundMessage).where(InboundMessage.control_id == "Z-UNKNOWN")).one()
    assert stored.outcome == "rejected"


async def test_resent_zam_is_acknowledged_again_but_applied_once(site: Site, session: Session) -> None:
    report_id, rows = published(session, copies=0)
    site.pfi.zam_port = None  # we play the PFI's receipts ourselves
    assert await publish_hl7.fn(report_id, 1) == "acknowledged"
    key = hl7_row(rows).idempotency_key
    zam = z01("Z-1", key)
    for _ in range(2):
        assert "MSA|AA|Z-1" in await mllp.exchange("127.0.0.1", site.listener.port, zam, timeout=5)
    dmp = next(r for r in rows if r.channel is Channel.dmp)
    assert [e.status.value for e in deliveries.timeline(session, dmp.id)] == [
        "pending",
        "sent",
        "acknowledged",
    ]


async def test_bad_input_is_not_retried_and_changes_nothing(site: Site, session: Session) -> None:
    bundle = factories.validated_report(session, copies=0)  # documents never built
    rows = plan(session, bundle)
    retrying = publish_hl7.with_options(retry_delay_seconds=0.05, retry_jitter_factor=None)
    state = await retrying(bundle.report.id, 1, return_state=True)
    with pytest.raises(Hl7RuleError, match="no CDA built yet"):
        await state.result()
    async with get_client() as client:
        assert (await client.read_task_run(state.state_details.task_run_id)).run_count == 1  # no retry
    session.expire_all()
    hl7 = session.get(Delivery, hl7_row(rows).id)
    assert (hl7.status, hl7.attempts, hl7.last_error) == (DeliveryStatus.pending, 0, None)
    assert site.pfi.received == []
    with pytest.raises(Hl7RuleError, match="no hl7 delivery planned for action 'replace'"):
        await publish_hl7.fn(bundle.report.id, 1, "replace")
