"""The ZAM receipt listener: an MLLP server the PFI sends its business acknowledgements to.

Each message is stored (InboundMessage) before it is acknowledged; a ZAM whose correlation is unknown
gets an AE with ERR and changes nothing. A resent ZAM (same sender and MSH-10) is answered again
without being applied twice. Store work runs in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ris.channels.hl7.receipts import UnknownCorrelation, ZamFormatError, apply_receipt, parse_zam
from ris.hl7v2.ack_writer import Party, Problem, Received, build_ack
from ris.hl7v2.er7 import Segment, segments
from ris.hl7v2.mllp import MllpServer
from ris.store.db import session_scope
from ris.store.models import InboundMessage, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    code: str  # AA / AE / AR
    problem: Problem | None = None


def _stored(sender: str, control_id: str, message_type: str, raw: str, url: str | None) -> InboundMessage:
    """Store the message once; a resent one returns the row already kept."""
    try:
        with session_scope(url) as session:
            row = InboundMessage(sender=sender, control_id=control_id, message_type=message_type, raw=raw)
            session.add(row)
        return row
    except IntegrityError:
        with session_scope(url) as session:
            stmt = select(InboundMessage).where(
                InboundMessage.sender == sender, InboundMessage.control_id == control_id
            )
            return session.exec(stmt).one()


def _finish(row_id: int, outcome: str, error: str | None, url: str | None) -> None:
    with session_scope(url) as session:
        row = session.get(InboundMessage, row_id)
        row.outcome, row.error = outcome, error
        session.add(row)


def process(raw: str, url: str | None = None) -> Verdict:
    """Store, apply and judge one inbound message (blocking: runs in a worker thread)."""
    items = segments(raw)
    msh = items[0] if items and items[0].name == "MSH" else None
    if msh is None or not msh.field(10):
        return Verdict("AR", Problem("101", "MSH-10"))
    sender = f"{msh.field(3)}^{msh.field(4)}"[:128]
    row = _stored(sender, msh.field(10)[:64], msh.field(9)[:24], raw, url)
    if row.outcome == "accepted":
        return Verdict("AA")
    if row.outcome == "rejected":
        return Verdict("AE", Problem("207", row.error or ""))
    try:
        receipt = parse_zam(raw)
        with session_scope(url) as session:
            delivery = apply_receipt(session, receipt)
            delivery_id = delivery.id
    except ZamFormatError as exc:  # it will never pass: AR, the PFI must not resend it as is
        condition = "200" if str(exc).startswith("MSH-9") else "101"  # unsupported type / field missing
        _finish(row.id, "rejected", str(exc)[:500], url)
        return Verdict("AR", Problem(condition, str(exc)))
    except UnknownCorrelation as exc:
        _finish(row.id, "rejected", str(exc)[:500], url)
        return Verdict("AE", Problem("204", str(exc)))  # unknown key identifier
    _finish(row.id, "accepted", None, url)
    log.info("ZAM %s applied to delivery %s", receipt.trigger, delivery_id)
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
    ) -> None:
        """`me` is the site (MSH-3 / MSH-4 of our acknowledgements): never a default identity."""
        self.me = me
        self.tz, self.database_url = tz, database_url
        self.server = MllpServer(self.handle, host, port)

    @property
    def port(self) -> int:
        return self.server.port

    async def handle(self, raw: str) -> str:
        verdict = await asyncio.to_thread(process, raw, self.database_url)
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
