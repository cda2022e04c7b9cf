"""One direct MSSanté delivery, store side: the mail to send now, and recording what came of it.

The mail is rendered again from the stored documents on every attempt with the delivery's own
idempotency key, so a retry carries the very same Message-ID. The gates are evaluated again when the
mail leaves (a refusal, a masking or a lost qualification recorded meanwhile still counts), and so is the
mailbox it leaves from (`sender`: the BAL applicative, or the validating radiologist's own, RIS.MSS.24).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from sqlmodel import Session

from ris.channels.mssante import message as mail
from ris.channels.mssante.sender import SenderUnavailable, sender_for
from ris.documents.cda import carries_ins
from ris.documents.ins_at_send import must_rebuild
from ris.identity.partners import record_partner_exchange
from ris.lifecycle import routing
from ris.lifecycle.distribution import DELETE, REACHED
from ris.site.settings import SiteSettings
from ris.store import blobs, deliveries
from ris.store import documents as stored_documents
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import ReportBundle, load_bundle


class MssRuleError(ValueError):
    """A delivery that cannot be an MSSanté mail (names the field and the rule)."""


@dataclass(frozen=True)
class Attempt:
    """One try: `message` is None when there is nothing to send (already sent, blocked, or to rebuild)."""

    delivery_id: int
    status: DeliveryStatus
    report_id: str
    version: int
    message: EmailMessage | None = None
    recipient: str = ""
    sender: str = ""  # the envelope sender: the mailbox `From` names
    envid: str = ""
    number: int = 0
    rebuild: bool = False  # the stored CDA carries an INS the identity may no longer lend


def facts(session: Session, bundle: ReportBundle) -> mail.MailFacts:
    report_id, version = bundle.report.id, bundle.version.version
    document = stored_documents.find(session, report_id, version)
    if document is None:
        raise MssRuleError(
            f"report {report_id} v{version}: no documents built yet (build the documents first)"
        )
    patient = bundle.patient
    return mail.MailFacts(
        exam_label=bundle.exam.exam_label,
        family=patient.birth_name,
        given=patient.first_birth_given_name,
        birth_date=patient.birth_date,
        cda=blobs.get(session, document.cda_sha256),
        pdf=blobs.get(session, document.pdf_sha256),
        pdf_filename=document.pdf_filename,
    )


def address(bundle: ReportBundle, row: Delivery) -> str:
    """Where the delivery's mail goes: the correspondent's MSSanté address, or the patient's mailbox."""
    if row.channel is Channel.mss_patient:
        if bundle.patient.ins_matricule is None:
            raise MssRuleError("patient: no INS matricule, no Mon espace santé address (RIS.MSS.22)")
        return mail.patient_address(bundle.patient.ins_matricule)
    if "@" not in row.recipient:
        raise MssRuleError(f"delivery {row.id}: recipient has no MSSanté address")
    return row.recipient


def render(
    session: Session,
    row: Delivery,
    settings: SiteSettings,
    *,
    now: dt.datetime,
    to: str | None = None,
    mailboxes: Mapping[str, str] | None = None,
) -> EmailMessage:
    """The mail of `row` (to `to` instead of its own recipient, for `ris mss render`); `mailboxes`: the
    personal mailbox of each RPPS of the certificate pool. SenderUnavailable when the site sends from the
    radiologist's mailbox and none can be chosen."""
    bundle = load_bundle(session, row.report_id, row.version)
    audience: mail.Audience = "patient" if row.channel is Channel.mss_patient else "ps"
    return mail.build(
        facts(session, bundle),
        to=to or address(bundle, row),
        audience=audience,
        action=row.action,
        key=row.idempotency_key,
        settings=settings,
        now=now,
        sender=sender_for(session, bundle.version.validator_rpps, settings.mssante, mailboxes or {}),
    )


def prepare(
    session: Session,
    delivery_id: int,
    settings: SiteSettings,
    *,
    now: dt.datetime,
    mailboxes: Mapping[str, str] | None = None,
) -> Attempt:
    """Count an attempt and render the mail; a delivery that already left is never rendered again. A mail
    with no mailbox to leave from fails at once, with the reason (`mailboxes`: see `render`)."""
    row = session.get(Delivery, delivery_id)
    if row is None or row.channel not in (Channel.mss_ps, Channel.mss_patient) or row.route != "direct":
        raise MssRuleError(f"delivery {delivery_id}: not a direct MSSanté delivery")
    if row.status in REACHED or row.status in (DeliveryStatus.blocked, DeliveryStatus.waiting_announcement):
        return Attempt(row.id, row.status, row.report_id, row.version)
    bundle = load_bundle(session, row.report_id, row.version)
    reason = routing.withheld_because(bundle, row.channel) if row.action != DELETE else None
    if reason:
        deliveries.set_status(session, row, DeliveryStatus.blocked, f"at send time: {reason}")
        return Attempt(row.id, row.status, row.report_id, row.version)
    if must_rebuild(session, bundle):
        return Attempt(row.id, row.status, row.report_id, row.version, rebuild=True)
    try:
        message = render(session, row, settings, now=now, mailboxes=mailboxes)
    except SenderUnavailable as exc:
        deliveries.set_status(session, row, DeliveryStatus.failed, f"sender: {exc}"[:500])
        return Attempt(row.id, row.status, row.report_id, row.version)
    row.attempts += 1
    row.external_id = message["Message-ID"].strip("<>")[:128]
    if row.status is not DeliveryStatus.pending:  # an administrator's retry of a failed delivery
        deliveries.set_status(session, row, DeliveryStatus.pending, f"attempt {row.attempts}")
    session.add(row)
    return Attempt(
        row.id,
        DeliveryStatus.pending,
        row.report_id,
        row.version,
        message,
        recipient=str(message["To"]),
        sender=message["From"].addresses[0].addr_spec,
        envid=row.idempotency_key,
        number=row.attempts,
    )


def record_sent(session: Session, delivery_id: int, response: str, *, dsn: bool) -> DeliveryStatus:
    row = session.get(Delivery, delivery_id)
    note = "DSN requested" if dsn else "server offers no DSN"
    deliveries.set_status(
        session, row, DeliveryStatus.sent, f"accepted by the operator: {response} ({note})"[:500]
    )
    _record_partner(session, row)
    return row.status


PATIENT_MAILBOX = "Mon espace santé (patient's MSSanté mailbox)"  # its address is the INS: not repeated


def _record_partner(session: Session, row: Delivery) -> None:
    """INS rule 31 (RIS.INS.51): a mail whose CDA carries the INS is an exchange of it with the recipient."""
    if row.action == DELETE:
        return
    document = stored_documents.find(session, row.report_id, row.version)
    if document is None or not carries_ins(blobs.get(session, document.cda_sha256)):
        return
    bundle = load_bundle(session, row.report_id, row.version)
    partner = PATIENT_MAILBOX if row.channel is Channel.mss_patient else row.recipient
    record_partner_exchange(session, bundle.patient, partner, row.channel, bundle.version.document_id)
