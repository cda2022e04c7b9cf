"""Publishing one version to the PFI, store side: what to send, and recording what came of it.

Statuses on the PFI route: after AA the hl7 delivery is acknowledged and every relayed delivery (DMP,
MSSanté PS / patient with route "pfi") still pending becomes sent; ZAM receipts then move them on. When
the PFI refuses the message for good, the relayed deliveries fail with it: they will not be relayed. A
resend message (`ris.operations.retry_relay`) is recorded the same way, for the copies it speaks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, select

from ris.channels.hl7.message import Hl7RuleError, MatrixRefusal, Publication, render
from ris.channels.hl7.resend import base_action
from ris.channels.hl7.vocabulary import ACTIONS
from ris.documents.ins_at_send import must_rebuild
from ris.identity.partners import record_partner_exchange
from ris.lifecycle import routing
from ris.lifecycle.routing import PFI, PlannedDelivery
from ris.site.settings import SiteSettings
from ris.store import blobs, deliveries
from ris.store import documents as stored_documents
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import ReportBundle, load_bundle

DELIVERED = (DeliveryStatus.acknowledged, DeliveryStatus.read)
REACHED = (DeliveryStatus.sent, DeliveryStatus.acknowledged, DeliveryStatus.read)
RELAY_FAILED = "PFI message failed: "  # prefix of relayed failures caused by the hl7 message itself


@dataclass(frozen=True)
class Attempt:
    """One try at sending: `er7` is None when there is nothing to send (already delivered, or refused)."""

    delivery_id: int
    control_id: str
    status: DeliveryStatus
    er7: str | None
    number: int = 0
    patient_id: int | None = None
    ins_included: bool = False
    document_id: str | None = None
    rebuild: bool = False  # the stored CDA carries an INS the identity may no longer lend: rebuild first


def hl7_delivery(session: Session, report_id: str, version: int, action: str) -> Delivery:
    if action not in ACTIONS:
        raise Hl7RuleError(f"action {action!r}: must be one of {', '.join(ACTIONS)}")
    stmt = select(Delivery).where(
        Delivery.report_id == report_id,
        Delivery.version == version,
        Delivery.channel == Channel.hl7,
        Delivery.action == action,
    )
    row = session.exec(stmt).first()
    if row is None:
        raise Hl7RuleError(
            f"report {report_id} v{version}: no hl7 delivery planned for action {action!r} "
            "(plan the deliveries first)"
        )
    return row


def relayed(session: Session, hl7: Delivery) -> list[Delivery]:
    """The relayed deliveries this message speaks for: those planned with it (with the action it repeats,
    for a resend), or, for a deletion, every copy of the version the PFI already relayed (the deletion
    goes wherever the document went)."""
    rows = [
        d
        for d in deliveries.for_version(session, hl7.report_id, hl7.version)
        if d.route == PFI and d.channel is not Channel.hl7
    ]
    if hl7.action == "delete":
        reached = {(d.channel, d.recipient): d for d in rows if d.status in REACHED}
        return list(reached.values())
    return [d for d in rows if d.action == base_action(hl7.action)]


def _as_planned(hl7: Delivery, rows: list[Delivery]) -> list[PlannedDelivery]:
    # A deletion reaches again each place the document reached: those destinations count as going.
    status = (lambda d: DeliveryStatus.pending) if hl7.action == "delete" else (lambda d: d.status)
    return [PlannedDelivery(d.channel, d.recipient, status(d), d.reason, d.route) for d in rows]


def load_cda(session: Session, report_id: str, version: int) -> bytes:
    document = stored_documents.find(session, report_id, version)
    if document is None:
        raise Hl7RuleError(f"report {report_id} v{version}: no CDA built yet (build the documents first)")
    return blobs.get(session, document.cda_sha256)


def preview(session: Session, report_id: str, version: int, action: str) -> Publication:
    """The publication the engine would send now; before planning, the routing policy stands in for the
    delivery rows and MSH-10 reads PREVIEW."""
    try:
        hl7 = hl7_delivery(session, report_id, version, action)
    except Hl7RuleError:
        if action not in ACTIONS:
            raise
        bundle = load_bundle(session, report_id, version)
        cda = load_cda(session, report_id, version)
        planned = [
            p for p in routing.plan(bundle, pfi=True) if p.route == PFI and p.channel is not Channel.hl7
        ]
        return Publication(bundle, cda, action, "PREVIEW", planned)
    return _publication(session, hl7, relayed(session, hl7))


def _publication(session: Session, hl7: Delivery, others: list[Delivery]) -> Publication:
    return Publication(
        bundle=load_bundle(session, hl7.report_id, hl7.version),
        cda=load_cda(session, hl7.report_id, hl7.version),
        action=hl7.action,
        control_id=hl7.idempotency_key,
        relayed=_as_planned(hl7, others),
    )


def prepare(
    session: Session,
    report_id: str,
    version: int,
    action: str,
    settings: SiteSettings,
    *,
    now: dt.datetime | None = None,
) -> Attempt:
    """Count an attempt and render the message; a delivered message is never rendered again."""
    hl7 = hl7_delivery(session, report_id, version, action)
    if hl7.status in DELIVERED:
        return Attempt(hl7.id, hl7.idempotency_key, hl7.status, None)
    others = relayed(session, hl7)
    if action == "delete" and not settings.hl7.deletion_notice_mss:  # RIS.MSS.16 is the site's choice
        others = [row for row in others if row.channel is Channel.dmp]
    if hl7.status is DeliveryStatus.failed and action != "delete":  # an administrator's retry
        for row in others:
            if row.status is DeliveryStatus.failed and (row.reason or "").startswith(RELAY_FAILED):
                deliveries.set_status(session, row, DeliveryStatus.pending, "PFI message sent again")
    if action != "delete" and not _gates_allow_sending(session, hl7, others):
        return Attempt(hl7.id, hl7.idempotency_key, hl7.status, None, rebuild=True)
    return render_attempt(session, hl7, _publication(session, hl7, others), others, settings, now=now)


def render_attempt(
    session: Session,
    message: Delivery,
    publication: Publication,
    copies: list[Delivery],
    settings: SiteSettings,
    *,
    now: dt.datetime | None = None,
) -> Attempt:
    """Render the message (an original or a resend) and count the attempt; a message the distribution
    matrix refuses fails at once, with the `copies` it was to relay."""
    try:
        rendered = render(publication, settings, now=now)
    except MatrixRefusal as exc:
        _fail(session, message, copies, str(exc))
        return Attempt(message.id, message.idempotency_key, DeliveryStatus.failed, None)
    message.attempts += 1
    if message.status is not DeliveryStatus.pending:  # an administrator's retry of a failed message
        deliveries.set_status(session, message, DeliveryStatus.pending, f"attempt {message.attempts}")
    session.add(message)
    return Attempt(
        delivery_id=message.id,
        control_id=message.idempotency_key,
        status=DeliveryStatus.pending,
        er7=rendered.er7,
        number=message.attempts,
        patient_id=publication.bundle.patient.id,
        ins_included=rendered.ins_included,
        document_id=publication.bundle.version.document_id,
    )


def _gates_allow_sending(session: Session, hl7: Delivery, others: list[Delivery]) -> bool:
    """The gates when the message leaves (`block_closed`); False when the stored CDA carries an INS the
    identity may no longer lend (INS rule 28): it must be rebuilt without it before anything leaves."""
    bundle = load_bundle(session, hl7.report_id, hl7.version)
    block_closed(session, bundle, others)
    return not must_rebuild(session, bundle)


def block_closed(session: Session, bundle: ReportBundle, copies: list[Delivery]) -> None:
    """Each copy still pending whose channel is closed now (a refusal, a user block, an identity no longer
    qualified) is blocked with the reason: the gates hold when the message leaves, not only when planned."""
    for row in copies:
        reason = (
            routing.withheld_because(bundle, row.channel) if row.status is DeliveryStatus.pending else None
        )
        if reason:
            deliveries.set_status(session, row, DeliveryStatus.blocked, f"at send time: {reason}")


def _fail(session: Session, hl7: Delivery, others: list[Delivery], reason: str) -> None:
    """The message fails, and with it the copies it was to relay (not the copies a deletion targets: they
    were delivered and stay so)."""
    deliveries.set_status(session, hl7, DeliveryStatus.failed, reason[:500])
    for row in others:
        if row.status is DeliveryStatus.pending:
            deliveries.set_status(session, row, DeliveryStatus.failed, (RELAY_FAILED + reason)[:500])


def record_accepted(session: Session, attempt: Attempt, *, partner: str) -> DeliveryStatus:
    hl7 = session.get(Delivery, attempt.delivery_id)
    deliveries.set_status(session, hl7, DeliveryStatus.acknowledged, f"ACK AA (attempt {attempt.number})")
    for row in relayed(session, hl7) if hl7.action != "delete" else []:
        # A ZAM may land meanwhile, applied by another process: lock the row and read it again, so that
        # the later of the two writes sees the earlier (never move an acknowledged copy back to sent).
        session.refresh(row, with_for_update=True)
        if row.status is DeliveryStatus.pending:
            deliveries.set_status(session, row, DeliveryStatus.sent, "accepted by the PFI for relay")
    if attempt.ins_included and attempt.patient_id is not None:
        record_partner_exchange(session, attempt.patient_id, partner[:200], Channel.hl7, attempt.document_id)
    return hl7.status


def record_transient(session: Session, attempt: Attempt, reason: str, *, give_up: bool) -> DeliveryStatus:
    """A fault that may pass (AE, no ACK in time, no connection): pending again for the next try, or, after
    the last one, failed with the copies the message was to relay (an original or a resend message)."""
    hl7 = session.get(Delivery, attempt.delivery_id)
    hl7.last_error = reason[:500]
    if give_up:
        _fail(session, hl7, relayed(session, hl7), f"no ACK AA after {attempt.number} attempts: {reason}")
    else:
        deliveries.set_status(
            session, hl7, DeliveryStatus.pending, f"attempt {attempt.number}: {reason}"[:500]
        )
    return hl7.status


def record_rejected(session: Session, attempt: Attempt, reason: str) -> DeliveryStatus:
    """AR: the PFI refuses the message (an original or a resend) for good, and the copies it relays fail."""
    hl7 = session.get(Delivery, attempt.delivery_id)
    _fail(session, hl7, relayed(session, hl7), f"rejected by the PFI: {reason}")
    return hl7.status
