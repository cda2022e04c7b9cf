"""The ZAM receipt listener: an MLLP server the PFI sends its business acknowledgements to.

Each message is stored (InboundMessage) before it is acknowledged; a ZAM whose correlation is unknown
gets an AE with ERR and changes nothing; one the delivery status machine does not let change its copy
(a receipt that would take back a delivered copy, one about a copy never sent, a replay of a receipt
under a new MSH-10) gets AR with an ERR naming the rule, is recorded `rejected` with it, and changes
nothing. A resent ZAM (same sender and MSH-10) is answered again
without being applied twice. A ZAM from a sender or address outside the allowlist is refused (AR) and
audited. Store work runs in a thread so the event loop keeps serving. Once a receipt's outcome is
committed, the listener's `on_outcome` hears of it (ids only): `ris up` and `ris hl7 listen` give it the
Prefect event emitter (`cli.receipt_events.emit_applied`), so the alerts see a receipt as soon as it lands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ris.channels.hl7.receipts import (
    Receipt,
    ReceiptRefused,
    UnknownCorrelation,
    ZamFormatError,
    apply_receipt,
    parse_zam,
)
from ris.hl7v2.ack_writer import Party, Problem, Received, build_ack
from ris.hl7v2.er7 import Segment, segments
from ris.hl7v2.inbound import Allowlist, key_problem, peer_trace
from ris.hl7v2.mllp import Limits, MllpServer, Peer, Tls
from ris.store import listener_refusals
from ris.store.db import in_unit_of_work
from ris.store.models import Delivery, InboundMessage, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppliedOutcome:
    """What a receipt did to a delivery, in ids only (no address, no name)."""

    delivery_id: int
    key: str  # the delivery's idempotency key
    channel: str
    action: str
    status: str
    report_id: str

    @classmethod
    def of(cls, row: Delivery) -> AppliedOutcome:
        return cls(
            row.id, row.idempotency_key, row.channel.value, row.action, row.status.value, row.report_id
        )


OutcomeSink = Callable[[AppliedOutcome], None]  # called in the listener's worker thread, after the commit


def _tell(on_outcome: OutcomeSink | None, outcome: AppliedOutcome) -> None:
    if on_outcome is None:
        return
    try:
        on_outcome(outcome)
    except Exception as exc:  # the receipt is applied and acknowledged whatever the sink does
        log.warning("outcome of delivery %s not reported: %s", outcome.delivery_id, type(exc).__name__)


@dataclass(frozen=True)
class Verdict:
    code: str  # AA / AE / AR
    problem: Problem | None = None


def _stored(sender: str, control_id: str, message_type: str, raw: str, url: str | None) -> InboundMessage:
    """Store the message once; a resent one returns the row already kept."""

    def add(session: Session) -> InboundMessage:
        row = InboundMessage(sender=sender, control_id=control_id, message_type=message_type, raw=raw)
        session.add(row)
        return row

    try:
        return in_unit_of_work(add, url)
    except IntegrityError:
        stmt = select(InboundMessage).where(
            InboundMessage.sender == sender, InboundMessage.control_id == control_id
        )
        return in_unit_of_work(lambda session: session.exec(stmt).one(), url)


def _mark(session: Session, row_id: int, outcome: str, error: str | None = None) -> bool:
    """`received` -> outcome, in the caller's unit of work; False when another worker got there first."""
    result = session.connection().execute(
        sa.update(InboundMessage)
        .where(InboundMessage.id == row_id, InboundMessage.outcome == "received")
        .values(outcome=outcome, error=error[:500] if error else None)
    )
    return result.rowcount == 1


def _finish(row_id: int, outcome: str, error: str | None, url: str | None) -> None:
    in_unit_of_work(lambda session: _mark(session, row_id, outcome, error), url)


def _apply(session: Session, row_id: int, receipt: Receipt) -> AppliedOutcome | Verdict:
    """Mark the message accepted and apply its receipt, one unit of work (run again whole after a
    deadlock); the verdict already given when a concurrent resend applied it first."""
    if not _mark(session, row_id, "accepted"):
        return _judged(session.get(InboundMessage, row_id))
    return AppliedOutcome.of(apply_receipt(session, receipt, inbound_id=row_id))


def _judged(row: InboundMessage) -> Verdict:
    if row.outcome == "accepted":
        return Verdict("AA")
    return Verdict("AE", Problem("207", row.error or ""))


def process(
    raw: str,
    url: str | None = None,
    *,
    allowlist: Allowlist | None = None,
    peer: Peer | None = None,
    on_outcome: OutcomeSink | None = None,
) -> Verdict:
    """Store, apply and judge one inbound message (blocking: runs in a worker thread). Applying the
    receipt and marking the message accepted are one unit of work: a resend after a crash applies it."""
    items = segments(raw)
    msh = items[0] if items and items[0].name == "MSH" else None
    if msh is None or not msh.field(10):
        return Verdict("AR", Problem("101", "MSH-10"))
    sender = f"{msh.field(3)}^{msh.field(4)}"
    if problem := key_problem(sender, msh.field(10)):
        return Verdict("AR", problem)
    if allowlist and (problem := allowlist.refusal(msh.field(3), sender, peer)):
        listener_refusals.record(url, "zam", sender, msh.field(10), problem.text, **peer_trace(peer))
        return Verdict("AR", problem)
    row = _stored(sender, msh.field(10), msh.field(9)[:24], raw, url)
    if row.outcome != "received":
        return _judged(row)
    try:
        receipt = parse_zam(raw)
        applied = in_unit_of_work(lambda session: _apply(session, row.id, receipt), url)
    except ZamFormatError as exc:  # it will never pass: AR, the PFI must not resend it as is
        condition = "200" if str(exc).startswith("MSH-9") else "101"  # unsupported type / field missing
        _finish(row.id, "rejected", str(exc), url)
        return Verdict("AR", Problem(condition, str(exc)))
    except UnknownCorrelation as exc:
        _finish(row.id, "rejected", str(exc), url)
        return Verdict("AE", Problem("204", str(exc)))  # unknown key identifier
    except ReceiptRefused as exc:  # the copy stays as it was; sending it again would change nothing
        _finish(row.id, "rejected", str(exc), url)
        return Verdict("AR", Problem(exc.condition, str(exc), "OBX-4"))
    if isinstance(applied, Verdict):
        return applied
    log.info("ZAM %s applied to delivery %s", receipt.trigger, applied.delivery_id)
    _tell(on_outcome, applied)
    return Verdict("AA")


class ZamListener:
    """`async with ZamListener(host, port) as listener: listener.port` serves until the block ends."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        me: Party,
        tz: str = "Europe/Paris",
        database_url: str | None = None,
        allowlist: Allowlist | None = None,
        limits: Limits | None = None,
        tls: Tls | None = None,
        charset: str = "utf-8",
        on_outcome: OutcomeSink | None = None,
    ) -> None:
        """`me` is the site (MSH-3 / MSH-4 of our acknowledgements): never a default identity. `allowlist`:
        the PFI's MSH-3 (or MSH-3^MSH-4) and addresses; a ZAM from anyone else is refused and audited.
        `on_outcome`: told of each applied receipt (ids only)."""
        self.me, self.on_outcome = me, on_outcome
        self.tz, self.database_url, self.allowlist = tz, database_url, allowlist
        self.server = MllpServer(self.handle, host, port, limits=limits, tls=tls, default_charset=charset)

    @property
    def port(self) -> int:
        return self.server.port

    async def handle(self, raw: str, peer: Peer | None = None) -> str:
        verdict = await asyncio.to_thread(
            process, raw, self.database_url, allowlist=self.allowlist, peer=peer, on_outcome=self.on_outcome
        )
        items = segments(raw)
        header = items[0] if items and items[0].name == "MSH" else Segment("MSH|^~\\&")
        return build_ack(
            verdict.code,
            Received.read(header),
            version=header.field(12) or "2.6",
            now=utcnow(),
            tz=self.tz,
            sender=self.me,
            problem=verdict.problem,
        )

    async def start(self) -> ZamListener:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

    async def __aenter__(self) -> ZamListener:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
