"""Sending again copies the PFI relayed but whose receipt reported a failure (ZAM Z01 DMPClosed, Z02 with an
SMTPERRORCODE), store side.

The PFI filed the original message (ACK AA): the same MSH-10 again would be a duplicate it files once and
relays nowhere. So the failed copies leave in a new message of the same action (initial, replace,
visibility, release) that carries only them: its distribution flags and recipients name the failed
channels and nothing else, with a new MSH-10. That message is an hl7 delivery of its own, action
`<action>-r<n>` (`initial-r1`, the first resend of the initial message), planned once per retry: a retry
interrupted before it was sent reuses it. Its ZAM receipts are correlated like the original's
(`ris.channels.hl7.receipts`): OBX-4 names this message, whose copies are those of the base action.
Copies already delivered are never in it.
"""

from __future__ import annotations

from sqlmodel import Session, select

from ris.channels.hl7.message import MatrixRefusal, Publication, render
from ris.channels.hl7.publish import RELAY_FAILED, Attempt, load_cda
from ris.documents.cda import carries_ins
from ris.identity.gate import ins_refusal_reason
from ris.ids import delivery_key
from ris.lifecycle import routing
from ris.lifecycle.routing import PFI
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import load_bundle

RESEND = "-r"


def base_action(action: str) -> str:
    """The action a resend message repeats (`initial-r2` -> `initial`); other actions are their own."""
    return action.split(RESEND, 1)[0]


def is_resend(row: Delivery) -> bool:
    return row.channel is Channel.hl7 and RESEND in row.action


def resends(session: Session, report_id: str, version: int, action: str) -> list[Delivery]:
    stmt = select(Delivery).where(
        Delivery.report_id == report_id,
        Delivery.version == version,
        Delivery.channel == Channel.hl7,
        Delivery.action.startswith(f"{action}{RESEND}"),
    )
    return list(session.exec(stmt.order_by(Delivery.id)))


def ensure_resend(session: Session, report_id: str, version: int, action: str) -> Delivery:
    """The resend message of this retry: the one not sent yet, else a new one with a new MSH-10."""
    earlier = resends(session, report_id, version, action)
    for row in earlier:
        if row.status is DeliveryStatus.pending:
            return row
    row = Delivery(
        report_id=report_id,
        version=version,
        action=f"{action}{RESEND}{len(earlier) + 1}",
        channel=Channel.hl7,
        recipient=PFI,
        route=PFI,
        status=DeliveryStatus.pending,
        idempotency_key=delivery_key(Channel.hl7),
    )
    session.add(row)
    deliveries.set_status(session, row, DeliveryStatus.pending, f"resend of the {action} message")
    return row


def carried(session: Session, message: Delivery) -> list[Delivery]:
    """The copies a resend message speaks for: every relayed copy of its base action (only those pending,
    i.e. reopened by the retry, go: `message.going`)."""
    action = base_action(message.action)
    return [
        d
        for d in deliveries.for_version(session, message.report_id, message.version)
        if d.route == PFI and d.channel is not Channel.hl7 and d.action == action
    ]


def prepare(session: Session, message_id: int, settings: SiteSettings) -> Attempt:
    """Count an attempt and render the resend; `er7` is None when nothing is left to send."""
    message = session.get(Delivery, message_id)
    if message is None or not is_resend(message):
        raise ValueError(f"delivery {message_id}: not a resend message to the PFI")
    if message.status is not DeliveryStatus.pending:
        return Attempt(message.id, message.idempotency_key, message.status, None)
    copies = carried(session, message)
    bundle = load_bundle(session, message.report_id, message.version)
    for row in copies:
        reason = (
            routing.withheld_because(bundle, row.channel) if row.status is DeliveryStatus.pending else None
        )
        if reason:
            deliveries.set_status(session, row, DeliveryStatus.blocked, f"at send time: {reason}")
    if not any(row.status is DeliveryStatus.pending for row in copies):
        deliveries.set_status(session, message, DeliveryStatus.blocked, "no copy left to send")
        return Attempt(message.id, message.idempotency_key, message.status, None)
    cda = load_cda(session, message.report_id, message.version)
    if ins_refusal_reason(bundle.patient) is not None and carries_ins(cda):
        return Attempt(message.id, message.idempotency_key, message.status, None, rebuild=True)
    planned = [routing.PlannedDelivery(d.channel, d.recipient, d.status, d.reason, d.route) for d in copies]
    publication = Publication(bundle, cda, base_action(message.action), message.idempotency_key, planned)
    try:
        rendered = render(publication, settings)
    except MatrixRefusal as exc:
        _fail(session, message, str(exc))
        return Attempt(message.id, message.idempotency_key, DeliveryStatus.failed, None)
    message.attempts += 1
    session.add(message)
    return Attempt(
        delivery_id=message.id,
        control_id=message.idempotency_key,
        status=DeliveryStatus.pending,
        er7=rendered.er7,
        number=message.attempts,
        patient_id=bundle.patient.id,
        ins_included=rendered.ins_included,
        document_id=bundle.version.document_id,
    )


def _fail(session: Session, message: Delivery, reason: str) -> None:
    deliveries.set_status(session, message, DeliveryStatus.failed, reason[:500])
    for row in carried(session, message):
        if row.status is DeliveryStatus.pending:
            deliveries.set_status(session, row, DeliveryStatus.failed, (RELAY_FAILED + reason)[:500])


def record_accepted(session: Session, attempt: Attempt) -> DeliveryStatus:
    message = session.get(Delivery, attempt.delivery_id)
    deliveries.set_status(session, message, DeliveryStatus.acknowledged, f"ACK AA (attempt {attempt.number})")
    for row in carried(session, message):
        session.refresh(row, with_for_update=True)  # a ZAM may have landed meanwhile
        if row.status is DeliveryStatus.pending:
            deliveries.set_status(
                session, row, DeliveryStatus.sent, f"accepted by the PFI for relay ({message.action})"
            )
    return message.status


def record_transient(session: Session, attempt: Attempt, reason: str, *, give_up: bool) -> DeliveryStatus:
    message = session.get(Delivery, attempt.delivery_id)
    message.last_error = reason[:500]
    if give_up:
        _fail(session, message, f"no ACK AA after {attempt.number} attempts: {reason}")
    else:
        deliveries.set_status(
            session, message, DeliveryStatus.pending, f"attempt {attempt.number}: {reason}"[:500]
        )
    return message.status


def record_rejected(session: Session, attempt: Attempt, reason: str) -> DeliveryStatus:
    message = session.get(Delivery, attempt.delivery_id)
    _fail(session, message, f"rejected by the PFI: {reason}")
    return message.status
