"""Append-only audit trail: a row is added for every access or change that the INS rules ask to trace."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ris.store.models import AuditEntry


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


@sa.event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session: Session, _context, _instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry):
            raise AuditTrailIsAppendOnly(f"audit entry {obj.id} cannot be changed or deleted")
