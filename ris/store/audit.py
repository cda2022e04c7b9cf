"""Append-only audit trail: a row is added for every access or change that the INS rules ask to trace.

Append-only three times over: the database refuses UPDATE and DELETE on the entries and on their seals
(triggers, migrations 0010 and 0011), this module refuses them in the ORM with a clear error, and a hash
chain over the entries (`verify`) finds what a person with direct access to the database changed anyway.
The OS account and host that wrote an entry are kept beside the declared actor.

Writers only insert entries: no lock, no read of the chain, nothing that makes one writer wait for
another. The sealer (`seal`) extends the chain afterwards, in its own short transaction:
- PostgreSQL: each entry carries its writing transaction's id (a column default). The sealer takes only
  the entries of transactions older than the oldest one still running (`pg_snapshot_xmin`), in
  (transaction id, entry id) order: those transactions have all ended, so no entry can ever turn up before
  one already sealed. It takes its own advisory lock before anything else and touches no business row,
  so it never deadlocks with a writer; a second sealer at the same moment returns at once.
- SQLite: writers are serialised (a unit of work holds the write lock from its BEGIN), so entry ids follow
  commit order; the sealer, itself a unit of work, seals in id order.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, func, select

from ris.store.audit_chain import GENESIS, entry_digest
from ris.store.models import AuditEntry, AuditSeal

SEAL_LOCK = 0x52495353  # PostgreSQL advisory lock of the sealer: one extends the chain at a time
SEAL_BATCH = 2000  # entries sealed per transaction (the transaction stays short)


class AuditTrailIsAppendOnly(RuntimeError):
    pass


def record(
    session: Session, *, actor: str, action: str, object_type: str, object_id: str | int, **detail: Any
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor, action=action, object_type=object_type, object_id=str(object_id), detail=detail
    )
    session.add(entry)
    return entry


@cache
def _origin() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = f"uid:{os.getuid()}"
    return user[:64], socket.gethostname()[:128]


def digest(entry: AuditEntry, prev_hash: str) -> str:
    return entry_digest(
        prev_hash,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        detail=entry.detail,
        os_user=entry.os_user,
        host=entry.host,
    )


@sa.event.listens_for(Session, "before_flush")
def _guard_and_stamp(session: Session, _context, _instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry):
            raise AuditTrailIsAppendOnly(f"audit entry {obj.id} cannot be changed or deleted")
        if isinstance(obj, AuditSeal):
            raise AuditTrailIsAppendOnly(f"audit seal {obj.position} cannot be changed or deleted")
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if new:
        user, host = _origin()
        for entry in new:
            entry.os_user, entry.host = entry.os_user or user, entry.host or host


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _last_seal(session: Session) -> AuditSeal | None:
    return session.exec(select(AuditSeal).order_by(AuditSeal.position.desc()).limit(1)).first()


def _after(postgres: bool, last: AuditSeal | None) -> Any:
    """The entries that come after the last seal in seal order."""
    if last is None:
        return sa.true()
    if postgres:
        return sa.tuple_(AuditEntry.xact_id, AuditEntry.id) > sa.tuple_(last.xact_id, last.entry_id)
    return AuditEntry.id > last.entry_id


def seal(session: Session, *, limit: int = SEAL_BATCH) -> int | None:
    """Extend the chain over up to `limit` entries that nothing can come before any more, in the caller's
    unit of work (`ris.store.db.session_scope`): the number sealed, or None when another sealer is at work.
    Deterministic: the same trail gives the same chain whoever seals it."""
    postgres = _postgres(session)
    ready = sa.true()
    if postgres:
        if not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SEAL_LOCK))):
            return None
        # Every transaction below the horizon has ended: its entries are all visible now, and no entry
        # written later can have a smaller transaction id.
        horizon = session.scalar(sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
        ready = AuditEntry.xact_id < horizon
    last = _last_seal(session)
    order = (AuditEntry.xact_id, AuditEntry.id) if postgres else (AuditEntry.id,)
    pending = select(AuditEntry).where(ready, _after(postgres, last)).order_by(*order).limit(limit)
    position, prev = (last.position, last.entry_hash) if last else (0, GENESIS)
    entries = session.exec(pending).all()
    for entry in entries:
        position += 1
        sealed = AuditSeal(
            position=position,
            entry_id=entry.id,
            xact_id=entry.xact_id,
            prev_hash=prev,
            entry_hash=digest(entry, prev),
        )
        session.add(sealed)
        prev = sealed.entry_hash
    session.flush()
    return len(entries)


@dataclass(frozen=True)
class ChainState:
    sealed: int  # entries in the chain
    head: str  # the last seal's hash
    awaiting: int  # entries written after it, not sealed yet


def chain_state(session: Session) -> ChainState:
    last = _last_seal(session)
    after = select(func.count()).select_from(AuditEntry).where(_after(_postgres(session), last))
    return ChainState(
        last.position if last else 0, last.entry_hash if last else GENESIS, session.exec(after).one()
    )


@dataclass
class Verification:
    entries: int = 0  # sealed entries checked
    awaiting: int = 0  # entries written after the last seal: the next seal takes them
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Walk the chain in seal order: each seal must follow the one before and hash its entry as written.
    Then each entry must be sealed once, or come after the last seal (it awaits sealing): an entry the
    chain went past without it was inserted afterwards."""
    result = Verification()
    last: AuditSeal | None = None
    walk = (
        select(AuditSeal, AuditEntry)
        .outerjoin(AuditEntry, AuditEntry.id == AuditSeal.entry_id)
        .order_by(AuditSeal.position)
        .limit(batch)
    )
    while rows := session.exec(walk.where(AuditSeal.position > (last.position if last else 0))).all():
        for sealed, entry in rows:
            if sealed.prev_hash != result.head:
                result.problems.append(
                    f"entry {sealed.entry_id}: does not follow the entry sealed before it "
                    "(an entry or its seal was deleted, inserted or moved)"
                )
            if entry is None:
                result.problems.append(
                    f"entry {sealed.entry_id}: sealed at position {sealed.position} but missing (deleted)"
                )
            elif sealed.entry_hash != digest(entry, sealed.prev_hash):
                result.problems.append(f"entry {entry.id}: content differs from what was written")
            result.head, result.entries, last = sealed.entry_hash, result.entries + 1, sealed
        session.expunge_all()
    twice = (
        select(AuditSeal.entry_id, func.count())
        .group_by(AuditSeal.entry_id)
        .having(func.count() > 1)
        .order_by(AuditSeal.entry_id)
    )
    for entry_id, times in session.exec(twice):
        result.problems.append(f"entry {entry_id}: sealed {times} times")
    _unsealed(session, last, result, batch)
    return result


def _unsealed(session: Session, last: AuditSeal | None, result: Verification, batch: int) -> None:
    postgres = _postgres(session)

    def key(xact_id: int | None, entry_id: int) -> tuple[int, int]:
        if not postgres:
            return (0, entry_id)
        return (-1 if xact_id is None else xact_id, entry_id)  # no transaction id: never sealable

    watermark = key(last.xact_id, last.entry_id) if last else None
    unsealed = (
        select(AuditEntry.id, AuditEntry.xact_id)
        .where(~sa.exists().where(AuditSeal.entry_id == AuditEntry.id))
        .order_by(AuditEntry.id)
        .execution_options(yield_per=batch)
    )
    for entry_id, xact_id in session.exec(unsealed):
        if watermark is None or key(xact_id, entry_id) > watermark:
            result.awaiting += 1
        else:
            result.problems.append(
                f"entry {entry_id}: not in the chain, which is sealed past it (inserted afterwards)"
            )
