"""A positive ZAM from a sender outside the ZAM listener's allowlist changes nothing: a DMP copy the PFI
was sent stays sent, the attempt is refused AR and audited; the genuine PFI's ZAM still applies."""

from __future__ import annotations

from sqlmodel import Session, select

from ris.channels.hl7.listener import ZamListener
from ris.hl7v2 import mllp
from ris.hl7v2.inbound import Allowlist
from ris.store import db
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus, InboundMessage
from tests import factories
from tests.hl7.conftest import hl7_row, plan
from tests.reliability.pam_messages import err, msa


def z01(sender: str, control_id: str, original: str) -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|{sender}|PFI-DEMO|RIS-DEMO|750000001|20260101120000||ZAM^Z01^ZAM_Z01|{control_id}|P|"
            "2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
            "EVN||20260101120000",
            f"OBX|1|CWE|ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM|{original}"
            "|Y^^expandedYes-NoIndicator||||||F",
        ]
    )


def dmp_status(db_url: str) -> DeliveryStatus:
    with Session(db.get_engine(db_url)) as s:
        rows = [d for d in s.exec(select(Delivery)).all() if d.channel is Channel.dmp]
        return rows[0].status


async def test_a_forged_positive_zam_leaves_a_sent_dmp_copy_as_it_was(session: Session, db_url: str) -> None:
    rows = plan(session, factories.validated_report(session))
    sent = hl7_row(rows)
    for row in rows:
        row.status = DeliveryStatus.sent
        session.add(row)
    session.commit()
    allow = Allowlist(senders=frozenset({"PFI^PFI-DEMO"}))
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, allowlist=allow) as zam:
        forged = await mllp.exchange(
            "127.0.0.1", zam.port, z01("ATTACKER", "F1", sent.idempotency_key), timeout=10
        )
        assert msa(forged)[1] == "AR" and "not allowed on this listener" in err(forged)
        assert dmp_status(db_url) is DeliveryStatus.sent
        genuine = await mllp.exchange(
            "127.0.0.1", zam.port, z01("PFI", "G1", sent.idempotency_key), timeout=10
        )
    assert msa(genuine)[1] == "AA"
    assert dmp_status(db_url) is DeliveryStatus.acknowledged
    with Session(db.get_engine(db_url)) as s:
        assert [m.control_id for m in s.exec(select(InboundMessage)).all()] == ["G1"]
        refused = s.exec(select(AuditEntry).where(AuditEntry.action == "hl7.refused")).one()
    assert (refused.actor, refused.object_id, refused.detail["control_id"]) == (
        "hl7:ATTACKER^PFI-DEMO",
        "zam",
        "F1",
    )
