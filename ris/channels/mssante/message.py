"""One MSSanté mail per recipient (mssante.md §3-5), built with the standard library's `email` package.

multipart/mixed: the text (body, "annule et remplace" or deletion text, the automatically-generated
footer naming the return mailbox), IHE_XDM.zip and the PDF. Headers: From (the sending mailbox and its
label: the BAL applicative, or the validating radiologist's personal one, `ris.channels.mssante.sender`),
To, Reply-To, the `XDM/1.0/DDM+...` subject, the Message-ID minted once per delivery, Return-Receipt-To
(RIS.MSS.14: the sending mailbox), Disposition-Notification-To (read receipts) and X-MSS-MES: FIN on the
patient's mail when the site does not want replies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Literal

from ris.channels.mssante import xdm
from ris.channels.mssante.sender import SenderBox, application_box
from ris.site.settings import SiteSettings

PATIENT_DOMAIN = "patient.mssante.fr"
Audience = Literal["ps", "patient"]


@dataclass(frozen=True)
class MailFacts:
    """What the mail says about the report: the subject's traits and the documents."""

    exam_label: str
    family: str
    given: str
    birth_date: dt.date
    cda: bytes
    pdf: bytes
    pdf_filename: str


def patient_address(ins_matricule: str) -> str:
    """RIS.MSS.22: the patient's Mon espace santé mailbox, from the INS matricule."""
    return f"{ins_matricule}@{PATIENT_DOMAIN}"


def message_id(key: str, settings: SiteSettings) -> str:
    """The Message-ID (without angle brackets) of a delivery: its idempotency key at the sender's domain."""
    return f"{key}@{settings.mssante.application_mailbox.rsplit('@', 1)[1]}"


def subject(facts: MailFacts) -> str:
    """ECO.2.1.3: `XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`."""
    born = facts.birth_date.strftime("%d/%m/%Y")
    return f"XDM/1.0/DDM+{facts.exam_label.upper()} {facts.family.upper()} {facts.given} {born}"


def _body(audience: Audience, action: str, settings: SiteSettings) -> str:
    mss = settings.mssante
    parts = []
    if action == "replace":
        parts.append(mss.replacement_text)
    if action == "delete":
        parts.append(mss.deletion_text)
    else:
        parts.append(mss.body_patient if audience == "patient" else mss.body_ps)
    parts.append("--\n" + mss.automatic_notice.format(reply_to=mss.reply_to))
    return "\n\n".join(parts) + "\n"


def build(
    facts: MailFacts,
    *,
    to: str,
    audience: Audience,
    action: str,
    key: str,
    settings: SiteSettings,
    now: dt.datetime,
    sender: SenderBox | None = None,
) -> EmailMessage:
    """The mail of one delivery; `key` is its idempotency key (the same on every retry); `sender`: the
    mailbox it leaves from (default: the BAL applicative)."""
    mss = settings.mssante
    sender = sender or application_box(mss)
    message = EmailMessage()
    message["From"] = formataddr((sender.label, sender.address))  # RFC 2047 for a non-ASCII label
    message["To"] = to
    message["Reply-To"] = mss.reply_to
    message["Subject"] = subject(facts)
    message["Date"] = format_datetime(now.astimezone(dt.UTC))
    message["Message-ID"] = f"<{message_id(key, settings)}>"
    message["Return-Receipt-To"] = sender.address  # RIS.MSS.14, word for word: the sending mailbox
    if mss.request_read_receipt:
        message["Disposition-Notification-To"] = sender.address
    if audience == "patient" and not mss.patient_may_reply:
        message["X-MSS-MES"] = "FIN"
    message.set_content(_body(audience, action, settings))
    facility = settings.facility
    sender = xdm.Sender(
        organisation=facility.name,
        identifier=facility.finess_geo,
        address=f"{facility.street}, {facility.postal_code} {facility.city}",
        phone=facility.phone,
        mailbox=mss.reply_to,
    )
    archive = xdm.package(facts.cda, sender, action=action, submitted_at=now, source_oid=facility.oid)
    message.add_attachment(archive, maintype="application", subtype="zip", filename="IHE_XDM.zip")
    message.add_attachment(facts.pdf, maintype="application", subtype="pdf", filename=facts.pdf_filename)
    return message
