"""The inbound message store: a message a crash left `received` is applied on resend and at start, a
resend never applies twice, and a message is filed under its whole sender + MSH-10 (never cut)."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, select

from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from ris.store.models import InboundMessage, Patient
from tests.reliability.pam_messages import err, msa, pam

OWN = IntakePolicy(own_domain=frozenset({"GAM"}))


def rows(db_url: str, model) -> list:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(model).order_by(model.id)).all())


def left_by_a_crash(db_url: str, message: str, control_id: str) -> None:
    """What a kill between storing and applying leaves: the message stored, nothing of it applied."""
    with db.session_scope(db_url) as s:
        s.add(InboundMessage(sender="GAM^CHU-X", control_id=control_id, message_type="ADT^A28", raw=message))


async def test_a_resend_of_a_message_left_received_is_applied_and_accepted(db_url: str) -> None:
    left_by_a_crash(db_url, pam(1), "R1")
    ack = await PamIntake(OWN, database_url=db_url).handle(pam(1))
    assert msa(ack)[1] == "AA"
    assert [p.ipp for p in rows(db_url, Patient)] == ["R00001"]
    assert [r.outcome for r in rows(db_url, InboundMessage)] == ["accepted"]


async def test_the_listener_applies_messages_left_received_before_it_listens(db_url: str) -> None:
    left_by_a_crash(db_url, pam(1), "R1")
    left_by_a_crash(db_url, pam(2), "R2")
    async with PamIntake(OWN, database_url=db_url).listener() as server:
        assert [p.ipp for p in rows(db_url, Patient)] == ["R00001", "R00002"]
        answer = await mllp.exchange("127.0.0.1", server.port, pam(1), timeout=10)
    assert msa(answer)[1] == "AA"
    assert len(rows(db_url, Patient)) == 2


async def test_simultaneous_resends_apply_once_and_both_get_aa(db_url: str) -> None:
    intake = PamIntake(OWN, database_url=db_url)
    acks = await asyncio.gather(*(intake.handle(pam(7)) for _ in range(8)))
    assert {msa(a)[1] for a in acks} == {"AA"}
    assert [p.ipp for p in rows(db_url, Patient)] == ["R00007"]


async def test_control_ids_sharing_their_first_64_characters_are_refused_not_merged(db_url: str) -> None:
    intake = PamIntake(OWN, database_url=db_url)
    prefix = "X" * 64
    acks = [await intake.handle(pam(n, cid=prefix + f"-{n}")) for n in (1, 2)]
    assert [msa(a)[1] for a in acks] == ["AR", "AR"]
    assert "MSH-10 longer than 64 characters" in err(acks[0]) and "|MSH^1^10|" in err(acks[0])
    assert rows(db_url, InboundMessage) == [] and rows(db_url, Patient) == []


async def test_a_64_character_control_id_is_kept_whole(db_url: str) -> None:
    cid = "Y" * 63 + "Z"
    ack = await PamIntake(OWN, database_url=db_url).handle(pam(1, cid=cid))
    assert msa(ack)[1:3] == ["AA", cid]
    assert [r.control_id for r in rows(db_url, InboundMessage)] == [cid]


async def test_the_same_unreadable_bytes_twice_are_refused_twice_and_kept_once(db_url: str) -> None:
    intake = PamIntake(OWN, database_url=db_url)
    acks = [await intake.handle("XYZ|not hl7\r") for _ in range(2)]
    assert [msa(a)[1] for a in acks] == ["AR", "AR"]
    assert [r.outcome for r in rows(db_url, InboundMessage)] == ["rejected"]
