"""Append-only audit trail: a row is added for every access or change that the INS rules ask to trace.

Append-only three times over: the database refuses UPDATE and DELETE on the table (triggers, migration
0010), this module refuses them in the ORM with a clear error, and every entry is chained to the previous
one by a hash (`verify` finds what a person with direct access to the database changed anyway).
The OS account and host that wrote an entry are kept beside the declared actor.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store.audit_chain import GENESIS, entry_digest
from ris.store.models import AuditEntry

CHAIN_LOCK = 0x52495341  # PostgreSQL advisory lock: one writer extends the chain at a time


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
def _guard_and_chain(session: Session, _context, _instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry):
            raise AuditTrailIsAppendOnly(f"audit entry {obj.id} cannot be changed or deleted")
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not new:
        return
    new.sort(key=lambda obj: sa.inspect(obj).insert_order)  # the order their ids will follow
    with session.no_autoflush:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
        last = select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
        prev = session.exec(last).first() or GENESIS
    user, host = _origin()
    for entry in new:
        entry.os_user, entry.host = entry.os_user or user, entry.host or host
        entry.prev_hash = prev
        entry.entry_hash = prev = digest(entry, prev)


@dataclass
class Verification:
    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Walk the trail in id order: each entry must follow the one before and hash to what it says."""
    result = Verification()
    after = 0
    while rows := session.exec(
        select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
    ).all():
        for entry in rows:
            if entry.prev_hash != result.head:
                result.problems.append(
                    f"entry {entry.id}: does not follow the entry before it "
                    "(an entry was deleted, inserted or moved)"
                )
            if entry.entry_hash != digest(entry, entry.prev_hash or GENESIS):
                result.problems.append(f"entry {entry.id}: content differs from what was written")
            result.head, result.entries, after = entry.entry_hash or "", result.entries + 1, entry.id
        session.expunge_all()
    return result
