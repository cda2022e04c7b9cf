"""The identity-vigilance worklist people see (rule 55: « alerter l'utilisateur et placer la donnée de
santé dans une liste de travail »): what is open, why, since when and which message raised it; how a
person resolves an item (who, how, why); the rows of the operations view (ids only) and the items old
enough to alert.

Kinds of item: `insi-verification-ko` (INSi says the INS received does not belong to these traits),
`insi-verification-unavailable` (INSi did not answer, after the retries), `insi-verification-failed` (a
SOAP fault, an unreadable answer, no INSi endpoint), `identity-conflict` (INSi OK but another identity
holds the INS), `identity-feed-rejected` (the PFI refused an outbound A31 / A47: a rejected feed
message), `worklist-record-refused` (a record of a worklist file). An inbound message the listener
refuses opens none: its sender is told (AE / AR) and nothing is stored but the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from ris.identity import verification
from ris.store import audit
from ris.store.models import InsVerification, Patient, VerificationStatus, WorklistItem, utcnow

RESOLUTIONS = {
    "retry": "ask INSi again (INSi was unavailable or its answer unusable): a new verification run",
    "close": "the person dealt with it (checked the identity, corrected the source...): closed",
}
# A KO is INSi's answer: asking again with the same traits gives it again (a person checks the identity).
RETRYABLE = ("insi-verification-unavailable", "insi-verification-failed")
REASON_MAX = 200


class ResolveRefused(ValueError):
    """The resolution cannot be applied: names the field and the rule; nothing changed."""


@dataclass(frozen=True)
class Retry:
    """A verification to run again: its id, the new round and its run's idempotency key."""

    verification_id: int
    round: int
    key: str


def _age_hours(item: WorklistItem, now: dt.datetime) -> float:
    return round((now - item.created_at).total_seconds() / 3600, 1)


def listing(session: Session, *, open_only: bool, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every item (or the open ones), oldest first, with its reason, age and what raised it; the patient
    by IPP (the worklist is for people who may read identities)."""
    now = now or utcnow()
    query = select(WorklistItem).order_by(WorklistItem.created_at, WorklistItem.id)
    if open_only:
        query = query.where(WorklistItem.resolved_at.is_(None))
    items = session.exec(query).all()
    ids = [int(i.object_id) for i in items if i.object_type == "patient" and i.object_id.isdigit()]
    ipps = dict(session.exec(select(Patient.id, Patient.ipp).where(Patient.id.in_(ids))).all()) if ids else {}
    return [
        {
            "id": item.id,
            "kind": item.kind,
            "open": item.resolved_at is None,
            "reason": item.reason,
            "patient": ipps.get(int(item.object_id)) if item.object_type == "patient" else None,
            "object": f"{item.object_type}:{item.object_id}",
            "created_at": item.created_at.isoformat(timespec="seconds"),
            "age_hours": _age_hours(item, now),
            "message": item.source,
            "inbound_message": item.inbound_message_id,
            "verification": item.verification_id,
            "resolved_at": item.resolved_at.isoformat(timespec="seconds") if item.resolved_at else None,
            "resolved_by": item.resolved_by,
            "resolution": item.resolution,
            "resolution_note": item.resolution_note,
        }
        for item in items
    ]


def operations_rows(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The open items for the Prefect UI (table artifact): ids, kind and age only, never a trait, an
    IPP or a reason (reasons may quote a refused value)."""
    now = now or utcnow()
    items = session.exec(
        select(WorklistItem).where(WorklistItem.resolved_at.is_(None)).order_by(WorklistItem.id)
    ).all()
    return [
        {
            "item": item.id,
            "kind": item.kind,
            "object": f"{item.object_type}:{item.object_id}",
            "inbound_message": item.inbound_message_id,
            "verification": item.verification_id,
            "age_hours": _age_hours(item, now),
            "alerted": item.alerted_at is not None,
        }
        for item in items
    ]


def overdue(session: Session, older_than_hours: float, now: dt.datetime | None = None) -> list[WorklistItem]:
    """Open items older than the site's threshold never alerted yet, marked alerted now: each alerts once."""
    now = now or utcnow()
    items = session.exec(
        select(WorklistItem)
        .where(
            WorklistItem.resolved_at.is_(None),
            WorklistItem.alerted_at.is_(None),
            WorklistItem.created_at <= now - dt.timedelta(hours=older_than_hours),
        )
        .order_by(WorklistItem.id)
        .with_for_update()
    ).all()
    for item in items:
        item.alerted_at = now
        session.add(item)
    session.flush()
    return list(items)


def resolve(session: Session, item_id: int, action: str, by: str, reason: str | None) -> Retry | None:
    """Close an open item with who, how and why (audited); `retry` also puts its INSi verification back to
    pending for a new round, returned for the caller to start its run."""
    if action not in RESOLUTIONS:
        raise ResolveRefused(f"--action {action!r}: one of {', '.join(RESOLUTIONS)}")
    why = (reason or "").strip()
    if not why:
        raise ResolveRefused("--reason: why the item is resolved is required (audit trail)")
    if len(why) > REASON_MAX:
        raise ResolveRefused(f"--reason: at most {REASON_MAX} characters")
    item = session.get(WorklistItem, item_id, with_for_update=True)
    if item is None:
        raise ResolveRefused(f"item {item_id}: no such worklist item (`ris identity worklist --open`)")
    if item.resolved_at is not None:
        raise ResolveRefused(
            f"item {item_id}: already resolved ({item.resolution}) by {item.resolved_by} at "
            f"{item.resolved_at.isoformat(timespec='seconds')}"
        )
    retry = None
    if action == "retry":
        if item.kind not in RETRYABLE or item.verification_id is None:
            raise ResolveRefused(
                f"--action retry: item {item_id} is {item.kind}, not an INSi verification to ask again "
                f"({', '.join(RETRYABLE)})"
            )
        row = session.get(InsVerification, item.verification_id, with_for_update=True)
        row.status, row.round, row.attempts, row.updated_at = (
            VerificationStatus.pending,
            row.round + 1,
            0,
            utcnow(),
        )
        session.add(row)
        retry = Retry(row.id, row.round, verification.run_key(row))
    item.resolved_at, item.resolved_by = utcnow(), by
    item.resolution, item.resolution_note = "retried" if retry else "closed", why
    session.add(item)
    audit.record(
        session,
        actor=by,
        action="identity.worklist_resolve",
        object_type="worklist_item",
        object_id=item.id,
        kind=item.kind,
        resolution=item.resolution,
        reason=why,
        verification=retry.verification_id if retry else None,
    )
    session.flush()
    return retry


def refused_records(session: Session, file_name: str, refusals: list[str]) -> int:
    """One item per refused record of a worklist file (`section[i] field: reason`), unless the same one is
    open already (loading the file again opens nothing twice); returns how many were opened."""
    source = f"worklist file {file_name}"[:200]
    opened = 0
    for line in refusals:
        where = line.split(" ", 1)[0][:64]
        reason = line[:500]
        known = session.exec(
            select(WorklistItem.id).where(
                WorklistItem.kind == "worklist-record-refused",
                WorklistItem.resolved_at.is_(None),
                WorklistItem.source == source,
                WorklistItem.object_id == where,
                WorklistItem.reason == reason,
            )
        ).first()
        if known is None:
            session.add(
                WorklistItem(
                    kind="worklist-record-refused",
                    object_type="worklist-record",
                    object_id=where,
                    reason=reason,
                    source=source,
                )
            )
            opened += 1
    session.flush()
    return opened
