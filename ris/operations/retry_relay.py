"""Sending again copies the PFI relayed but whose receipt reported a failure (ZAM Z01 DMPClosed, Z02 with an
SMTPERRORCODE), store side.

The PFI filed the original message (ACK AA): the same MSH-10 again would be a duplicate it files once and
relays nowhere. So the failed copies leave in a new message of the same action (initial, replace,
visibility, release) that carries only them: its distribution flags and recipients name the failed
channels and nothing else, with a new MSH-10. That message is an hl7 delivery of its own, action
`<action>-r<n>` (`initial-r1`, the first resend of the initial message), planned once per retry: a retry
interrupted before it was sent reuses it (`ris.channels.hl7.resend` names it). Its ACK is recorded and
its ZAM receipts are correlated like the original's (`ris.channels.hl7.publish`, `.receipts`): OBX-4
names this message, whose copies are those of the base action. Copies already delivered are never in it.
"""

from __future__ import annotations

from sqlmodel import Session, select

from ris.channels.hl7.message import Publication
from ris.channels.hl7.publish import Attempt, block_closed, load_cda, relayed, render_attempt
from ris.channels.hl7.resend import RESEND, base_action, is_resend, resend_action
from ris.documents.ins_at_send import must_rebuild
from ris.ids import delivery_key
from ris.lifecycle import routing
from ris.lifecycle.routing import PFI
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import load_bundle


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
        action=resend_action(action, len(earlier) + 1),
        channel=Channel.hl7,
        recipient=PFI,
        route=PFI,
        status=DeliveryStatus.pending,
        idempotency_key=delivery_key(Channel.hl7),
    )
    session.add(row)
    deliveries.set_status(session, row, DeliveryStatus.pending, f"resend of the {action} message")
    return row


def prepare(session: Session, message_id: int, settings: SiteSettings) -> Attempt:
    """Count an attempt and render the resend; `er7` is None when nothing is left to send."""
    message = session.get(Delivery, message_id)
    if message is None or not is_resend(message):
        raise ValueError(f"delivery {message_id}: not a resend message to the PFI")
    if message.status is not DeliveryStatus.pending:
        return Attempt(message.id, message.idempotency_key, message.status, None)
    # The copies of its base action: only those pending, i.e. reopened by the retry, go.
    copies = relayed(session, message)
    bundle = load_bundle(session, message.report_id, message.version)
    block_closed(session, bundle, copies)
    if not any(row.status is DeliveryStatus.pending for row in copies):
        deliveries.set_status(session, message, DeliveryStatus.blocked, "no copy left to send")
        return Attempt(message.id, message.idempotency_key, message.status, None)
    if must_rebuild(session, bundle):
        return Attempt(message.id, message.idempotency_key, message.status, None, rebuild=True)
    cda = load_cda(session, message.report_id, message.version)
    planned = [routing.PlannedDelivery(d.channel, d.recipient, d.status, d.reason, d.route) for d in copies]
    publication = Publication(bundle, cda, base_action(message.action), message.idempotency_key, planned)
    return render_attempt(session, message, publication, copies, settings)


def record_accepted(session: Session, attempt: Attempt) -> DeliveryStatus:
    message = session.get(Delivery, attempt.delivery_id)
    deliveries.set_status(session, message, DeliveryStatus.acknowledged, f"ACK AA (attempt {attempt.number})")
    for row in relayed(session, message):
        session.refresh(row, with_for_update=True)  # a ZAM may have landed meanwhile
        if row.status is DeliveryStatus.pending:
            deliveries.set_status(
                session, row, DeliveryStatus.sent, f"accepted by the PFI for relay ({message.action})"
            )
    return message.status
