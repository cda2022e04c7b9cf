"""ZAM receipts over a real socket move a copy only forward, from a copy that was sent, once: a receipt
that would take back a delivered copy, one about a copy never sent and a replay under a new MSH-10 are
answered AR with an ERR naming the rule, recorded `rejected` with it, and leave the copy as it was."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import Session, select

from ris.channels.hl7.listener import ZamListener
from ris.hl7v2 import mllp
from ris.hl7v2.inbound import Allowlist
from ris.identity.pid_segment import PATIENT_MAIL_DOMAIN
from ris.store import db
from ris.store.models import (
    Channel,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Exam,
    InboundMessage,
    Patient,
    Report,
)
from tests import factories
from tests.hl7.conftest import hl7_row, plan
from tests.reliability.pam_messages import err, msa

PFI = Allowlist(senders=frozenset({"PFI^PFI-DEMO"}))
YN = "expandedYes-NoIndicator"
OBX3 = {
    "Z01": "ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM",
    "Z02": "ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM",
    "Z03": "ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM",
}
_ids = itertools.count(1)


def zam(
    trigger: str, original: str, value: str = "Y", address: str | None = None, sender: str = "PFI"
) -> str:
    """A ZAM as the PFI sends it, under a new MSH-10 each time."""
    lines = [
        f"MSH|^~\\&|{sender}|PFI-DEMO|RIS-DEMO|750000001|20260101120000||ZAM^{trigger}^ZAM_Z01|"
        f"Z{next(_ids)}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        "EVN||20260101120000",
        f"OBX|1|CWE|{OBX3[trigger]}|{original}|{value}^^{YN}||||||F",
    ]
    if address:
        lines.append(
            f"OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|X|^^X.400^{address}||||||F"
        )
    return "\r".join(lines)


@pytest.fixture
def published(session: Session) -> tuple[Delivery, dict[Channel, Delivery]]:
    """A version's PFI message, acknowledged, and its relayed copies, sent."""
    rows = plan(session, factories.validated_report(session))
    message = hl7_row(rows)
    message.status, message.attempts = DeliveryStatus.acknowledged, 1
    copies = {}
    for row in rows:
        if row is not message:
            row.status = DeliveryStatus.sent
            copies.setdefault(row.channel, row)
        session.add(row)
    session.commit()
    return message, copies


def state(db_url: str, delivery_id: int) -> tuple[DeliveryStatus, int]:
    """The copy's status and the length of its timeline."""
    with Session(db.get_engine(db_url)) as s:
        events = s.exec(select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery_id)).all()
        return s.get(Delivery, delivery_id).status, len(events)


def set_status(db_url: str, delivery_id: int, status: DeliveryStatus) -> None:
    with db.session_scope(db_url) as s:
        row = s.get(Delivery, delivery_id)
        row.status = status
        s.add(row)


async def send(port: int, message: str) -> tuple[str, str]:
    ack = await mllp.exchange("127.0.0.1", port, message, timeout=10)
    return msa(ack)[1], err(ack)


def inbound(db_url: str) -> list[tuple[str, str | None]]:
    with Session(db.get_engine(db_url)) as s:
        rows = s.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
        return [(r.outcome, r.error) for r in rows]


async def test_receipts_move_copies_forward_and_a_late_one_changes_nothing(db_url: str, published) -> None:
    message, copies = published
    ps, dmp = copies[Channel.mss_ps], copies[Channel.dmp]
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, allowlist=PFI) as listener:
        assert (await send(listener.port, zam("Z01", message.idempotency_key)))[0] == "AA"
        assert (await send(listener.port, zam("Z03", message.idempotency_key, "Y", ps.recipient)))[0] == "AA"
        read = state(db_url, ps.id)
        # The delivery notice, late: behind the copy, not against it.
        late = await send(listener.port, zam("Z02", message.idempotency_key, "Y", ps.recipient))
    assert state(db_url, dmp.id)[0] is DeliveryStatus.acknowledged
    assert read[0] is DeliveryStatus.read and late == ("AA", "") and state(db_url, ps.id) == read


@pytest.mark.parametrize(
    ("trigger", "value", "channel", "status", "rule"),
    [
        (
            "Z02",
            "N",
            Channel.mss_ps,
            DeliveryStatus.read,
            "is read: a receipt never takes back a delivered copy",
        ),
        ("Z01", "N", Channel.dmp, DeliveryStatus.acknowledged, "is acknowledged: a receipt never takes back"),
        ("Z01", "Y", Channel.dmp, DeliveryStatus.blocked, "is blocked: never sent, so no receipt can be"),
        ("Z01", "Y", Channel.dmp, DeliveryStatus.waiting_announcement, "is waiting_announcement: never sent"),
        ("Z02", "Y", Channel.mss_ps, DeliveryStatus.failed, "failed: a receipt cannot reopen it"),
        ("Z03", "N", Channel.mss_patient, DeliveryStatus.blocked, "is blocked: never sent"),
    ],
)
async def test_a_receipt_the_status_machine_refuses_is_answered_ar_and_changes_nothing(
    db_url: str, published, trigger: str, value: str, channel: Channel, status: DeliveryStatus, rule: str
) -> None:
    message, copies = published
    copy = copies[channel]
    set_status(db_url, copy.id, status)
    before = state(db_url, copy.id)
    address = {Channel.mss_ps: copy.recipient, Channel.mss_patient: patient_address(db_url, copy)}.get(
        channel
    )
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, allowlist=PFI) as listener:
        code, error = await send(listener.port, zam(trigger, message.idempotency_key, value, address))
    assert code == "AR"
    assert f"delivery {copy.id} ({channel.value}) {rule}" in error and "207^" in error
    assert state(db_url, copy.id) == before
    assert inbound(db_url) == [("rejected", error.rsplit("|", 1)[1].replace("\\F\\", "|"))]


def patient_address(db_url: str, copy: Delivery) -> str:
    """The patient's Mon espace santé address, which the PFI names in a Z02 / Z03 about the patient's copy."""
    with Session(db.get_engine(db_url)) as s:
        exam = s.get(Exam, s.get(Report, copy.report_id).exam_id)
        return f"{s.get(Patient, exam.patient_id).ins_matricule}@{PATIENT_MAIL_DOMAIN}"


async def test_a_receipt_replayed_under_a_new_msh10_is_refused_as_a_duplicate(db_url: str, published) -> None:
    message, copies = published
    ps = copies[Channel.mss_ps]
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, allowlist=PFI) as listener:
        first = await send(listener.port, zam("Z02", message.idempotency_key, "N", ps.recipient))
        failed = state(db_url, ps.id)
        replay = await send(listener.port, zam("Z02", message.idempotency_key, "N", ps.recipient))
        patient = patient_address(db_url, copies[Channel.mss_patient])
        note = await send(listener.port, zam("Z03", message.idempotency_key, "N", patient))
        again = await send(listener.port, zam("Z03", message.idempotency_key, "N", patient))
    assert first[0] == "AA" and failed[0] is DeliveryStatus.failed
    assert (
        replay[0] == "AR"
        and "205^" in replay[1]
        and "a receipt applies once, whatever its MSH-10" in replay[1]
    )
    assert state(db_url, ps.id) == failed
    assert note[0] == "AA" and again[0] == "AR" and "205^" in again[1]  # a note is written once too
    assert [o for o, _ in inbound(db_url)] == ["accepted", "rejected", "accepted", "rejected"]


async def test_a_receipt_about_a_message_still_on_its_way_applies(db_url: str, published) -> None:
    """The PFI may send its ZAM before the engine recorded its ACK: the copy, still pending in a message
    that left, was sent. A message not sent yet has no copy a receipt can be about."""
    message, copies = published
    dmp = copies[Channel.dmp]
    set_status(db_url, message.id, DeliveryStatus.pending)
    set_status(db_url, dmp.id, DeliveryStatus.pending)
    with db.session_scope(db_url) as s:
        s.get(Delivery, message.id).attempts = 0
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, allowlist=PFI) as listener:
        early = await send(listener.port, zam("Z01", message.idempotency_key))
        assert state(db_url, dmp.id)[0] is DeliveryStatus.pending
        with db.session_scope(db_url) as s:
            s.get(Delivery, message.id).attempts = 1  # the message left; its ACK is not recorded yet
        on_its_way = await send(listener.port, zam("Z01", message.idempotency_key))
    assert early[0] == "AR" and "is pending: never sent" in early[1]
    assert on_its_way[0] == "AA" and state(db_url, dmp.id)[0] is DeliveryStatus.acknowledged
