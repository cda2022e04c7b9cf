"""identity-feed end to end over real sockets: outbox -> send-identity-message -> sandbox PFI (MLLP, ACK)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import Session, select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from flows.identity_feed import identity_feed
from ris.identity.registry import edit_identity, set_attributes
from ris.site.settings import SiteSettings
from ris.store.models import OutboundMessage, OutboundStatus, PartnerExchange
from sandbox.pfi import PfiSandbox
from tasks.identity_feed import send_outbound
from tests import factories
from tests.identity.helpers import CLERK, SUPER

pytestmark = pytest.mark.slow


async def point_at(sandbox: PfiSandbox, ack_timeout_s: float) -> None:
    await PfiEndpoint(host="127.0.0.1", port=sandbox.port, ack_timeout_s=ack_timeout_s).save(
        DEFAULT_NAME, overwrite=True
    )


@pytest.fixture
async def pfi(prefect_server, db_url: str) -> AsyncIterator[PfiSandbox]:
    async with PfiSandbox() as sandbox:
        await point_at(sandbox, 10.0)  # generous: a busy CI machine must not turn an AA into a timeout
        await SiteSettingsBlock(settings=SiteSettings()).save(DEFAULT_NAME, overwrite=True)
        yield sandbox


def outbox(session: Session) -> list[OutboundMessage]:
    session.expire_all()
    return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


async def test_the_feed_sends_in_order_per_patient_and_never_twice(pfi: PfiSandbox, session: Session) -> None:
    first, second = factories.patient(session), factories.patient(session)
    edit_identity(session, SUPER, first, {"birth_date": dt.date(1979, 3, 29)})  # A31 + A47
    edit_identity(session, CLERK, second, {"used_name": "MARTIN"})  # A31
    set_attributes(session, CLERK, first, ["douteuse"])  # A31 (the INS already left with the A47)
    session.commit()
    rows = outbox(session)

    counts = await identity_feed()
    assert counts == {"patients": 2, "acknowledged": 4, "failed": 0, "pending": 0, "held": 0, "error": 0}
    assert {r.status for r in outbox(session)} == {OutboundStatus.acknowledged}
    assert [r.attempts for r in outbox(session)] == [1, 1, 1, 1]
    arrived = [m.control_id for m in pfi.received]
    per_patient = [[r.control_id for r in rows if r.patient_id == p.id] for p in (first, second)]
    for expected in per_patient:
        assert [c for c in arrived if c in expected] == expected  # an A47 never overtakes its A31
    assert set(pfi.identity_messages) == {r.control_id for r in rows} and pfi.duplicates == 0
    assert [m.answer for m in pfi.received] == ["AA"] * 4
    # Rule 31: the INS reached the PFI twice: in the first patient's A47 (MRG-1, the prior list) and in
    # the second patient's A31 (still qualified); the downgraded A31s carried none.
    exchanges = sorted(p.patient_id for p in session.exec(select(PartnerExchange)).all())
    assert exchanges == [first.id, second.id]

    assert await identity_feed() == {
        "patients": 0,
        "acknowledged": 0,
        "failed": 0,
        "pending": 0,
        "held": 0,
        "error": 0,
    }
    assert len(pfi.received) == 4  # nothing sent twice

    async with get_client() as client:
        runs = await client.read_task_runs()
    names = {r.name for r in runs if r.name.startswith("send-identity-message")}
    assert names == {f"send-identity-message-{r.id}" for r in rows}  # ids only, no health data


async def test_ar_marks_the_message_failed_with_its_codes(pfi: PfiSandbox, session: Session) -> None:
    set_attributes(session, CLERK, factories.patient(session, qualified=False), ["fictive"])
    session.commit()
    pfi.fail_next("AR")
    assert await send_outbound.fn(outbox(session)[0].id) == "failed"
    row = outbox(session)[0]
    assert (row.status, row.attempts) == (OutboundStatus.failed, 1)
    assert row.last_error.endswith("MSA AR: ERR-3 207 Application internal error")
    assert pfi.identity_messages == {}
    assert await send_outbound.fn(row.id) == "failed" and len(pfi.received) == 1  # never resent


async def test_ae_then_aa_retries_with_the_same_msh10_and_keeps_the_order(
    pfi: PfiSandbox, session: Session
) -> None:
    edit_identity(session, SUPER, factories.patient(session), {"birth_name": "PAT-QUATRE"})  # A31 + A47
    session.commit()
    a31, a47 = outbox(session)
    pfi.fail_next("AE")
    counts = await identity_feed()  # the task's own retry: backoff 2 s with jitter
    assert (counts["acknowledged"], counts["pending"], counts["held"]) == (2, 0, 0)
    assert [(m.control_id, m.answer) for m in pfi.received] == [
        (a31.control_id, "AE"),
        (a31.control_id, "AA"),
        (a47.control_id, "AA"),
    ]
    assert pfi.received[0].raw == pfi.received[1].raw  # the very same bytes
    assert [(r.status, r.attempts) for r in outbox(session)] == [
        (OutboundStatus.acknowledged, 2),
        (OutboundStatus.acknowledged, 1),
    ]


async def test_a_lost_ack_is_resent_and_flagged_as_duplicate(pfi: PfiSandbox, session: Session) -> None:
    edit_identity(session, CLERK, factories.patient(session), {"used_name": "MARTIN"})
    session.commit()
    row = outbox(session)[0]
    pfi.fail_next("lost_ack")
    await point_at(pfi, 1.0)
    with pytest.raises(Exception, match="no ACK within 1 s"):
        await send_outbound.fn(row.id)
    assert outbox(session)[0].status is OutboundStatus.pending
    await point_at(pfi, 10.0)
    assert await send_outbound.fn(row.id) == "acknowledged"
    assert [m.duplicate for m in pfi.received] == [False, True] and pfi.duplicates == 1
    assert list(pfi.identity_messages) == [row.control_id]
