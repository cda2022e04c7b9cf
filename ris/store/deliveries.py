"""Per-channel delivery records and their status timeline."""

from __future__ import annotations

from sqlmodel import Session, select

from ris.store import audit
from ris.store.models import Channel, Delivery, DeliveryEvent, DeliveryStatus, utcnow


def set_status(
    session: Session,
    delivery: Delivery,
    status: DeliveryStatus,
    detail: str | None = None,
    *,
    actor: str = "engine",
) -> Delivery:
    """Move a delivery to `status`, append it to the timeline and the audit trail."""
    delivery.status = status
    delivery.updated_at = utcnow()
    if status in (DeliveryStatus.blocked, DeliveryStatus.failed):
        delivery.reason = detail
    if status is DeliveryStatus.failed:
        delivery.last_error = detail
    session.add(delivery)
    session.flush()
    session.add(DeliveryEvent(delivery_id=delivery.id, status=status, detail=detail))
    audit.record(
        session,
        actor=actor,
        action=f"delivery.{status.value}",
        object_type="delivery",
        object_id=delivery.id,
        report_id=delivery.report_id,
        version=delivery.version,
        channel=delivery.channel.value,
    )
    return delivery


def for_version(session: Session, report_id: str, version: int) -> list[Delivery]:
    stmt = (
        select(Delivery)
        .where(Delivery.report_id == report_id, Delivery.version == version)
        .order_by(Delivery.channel, Delivery.id)
    )
    return list(session.exec(stmt))


def find(
    session: Session, report_id: str, version: int, channel: Channel, recipient: str, action: str = "initial"
) -> Delivery | None:
    stmt = select(Delivery).where(
        Delivery.report_id == report_id,
        Delivery.version == version,
        Delivery.channel == channel,
        Delivery.recipient == recipient,
        Delivery.action == action,
    )
    return session.exec(stmt).first()


def by_idempotency_key(session: Session, key: str) -> Delivery | None:
    return session.exec(select(Delivery).where(Delivery.idempotency_key == key)).first()


def timeline(session: Session, delivery_id: int) -> list[DeliveryEvent]:
    stmt = select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery_id).order_by(DeliveryEvent.id)
    return list(session.exec(stmt))


def failed(session: Session, channel: Channel | None = None, report_id: str | None = None) -> list[Delivery]:
    """Failed deliveries, oldest first, optionally for one channel or one report."""
    stmt = select(Delivery).where(Delivery.status == DeliveryStatus.failed)
    if channel is not None:
        stmt = stmt.where(Delivery.channel == channel)
    if report_id is not None:
        stmt = stmt.where(Delivery.report_id == report_id)
    return list(session.exec(stmt.order_by(Delivery.updated_at)))


def reminders(session: Session, report_id: str) -> list[Delivery]:
    """The reminder mails about a report (RIS.CRR.06), oldest first."""
    stmt = (
        select(Delivery)
        .where(Delivery.report_id == report_id, Delivery.channel == Channel.reminder)
        .order_by(Delivery.id)
    )
    return list(session.exec(stmt))


def for_report(session: Session, report_id: str) -> list[Delivery]:
    """Every delivery of a report, all versions and actions, in the order they were planned."""
    stmt = select(Delivery).where(Delivery.report_id == report_id).order_by(Delivery.version, Delivery.id)
    return list(session.exec(stmt))


def record_refused(session: Session, delivery_id: int, reason: str) -> DeliveryStatus:
    """A peer refused the send for good (5xx, registry error, bad certificate): failed with its reason."""
    row = session.get(Delivery, delivery_id)
    set_status(session, row, DeliveryStatus.failed, reason[:500])
    return row.status


def record_transient(session: Session, delivery_id: int, reason: str, *, give_up: bool) -> DeliveryStatus:
    """A fault that may pass: pending again for the next try, or failed when this was the last one."""
    row = session.get(Delivery, delivery_id)
    row.last_error = reason[:500]
    if give_up:
        set_status(session, row, DeliveryStatus.failed, f"after {row.attempts} attempts: {reason}"[:500])
    else:
        set_status(session, row, DeliveryStatus.pending, f"attempt {row.attempts}: {reason}"[:500])
    return row.status


def record_engine_error(session: Session, delivery_id: int, reason: str) -> DeliveryStatus:
    """An error that is neither the peer's refusal nor a fault that may pass (a bug, a stored value the
    engine cannot send): a copy still pending fails with the reason, so that `ris delivery failed`, a
    retry and the alerts see it rather than a copy pending for ever; a copy that went stays as it is."""
    row = session.get(Delivery, delivery_id)
    if row.status is DeliveryStatus.pending:
        set_status(session, row, DeliveryStatus.failed, reason[:500])
    return row.status
