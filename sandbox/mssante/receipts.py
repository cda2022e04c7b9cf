"""What the receiving side returns to the sender's mailbox: a DSN (RFC 3464, multipart/report
delivery-status) and an MDN (RFC 8098, multipart/report disposition-notification), built with the
standard library's `email` package. Never imports `ris`."""

from __future__ import annotations

import datetime as dt
import uuid
from email.message import EmailMessage, Message
from email.utils import format_datetime

REPORTING = "mx.mssante.sandbox.localhost"


def _fields(pairs: list[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in pairs:
        block[name] = value
    return block


def _report(kind: str, to: str, subject: str, text: str, machine: EmailMessage) -> EmailMessage:
    report = EmailMessage()
    report["From"] = f"MAILER-DAEMON@{REPORTING}"
    report["To"] = to
    report["Subject"] = subject
    report["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    report["Message-ID"] = f"<{uuid.uuid4().hex}@{REPORTING}>"
    report.set_content(text)
    report.make_mixed()
    report.replace_header("Content-Type", f'multipart/report; report-type="{kind}"')
    report.attach(machine)
    return report


def dsn(
    *, to: str, envid: str | None, recipient: str, action: str, status: str, original_headers: bytes
) -> bytes:
    """A delivery status notification for one recipient (`action`: delivered / failed / delayed)."""
    per_message = [("Reporting-MTA", f"dns; {REPORTING}")]
    if envid:
        per_message.append(("Original-Envelope-Id", envid))
    per_recipient = [
        ("Final-Recipient", f"rfc822; {recipient}"),
        ("Action", action),
        ("Status", status),
    ]
    machine = EmailMessage()
    machine["Content-Type"] = "message/delivery-status"
    machine.set_payload([_fields(per_message), _fields(per_recipient)])
    report = _report(
        "delivery-status",
        to,
        f"Delivery Status Notification ({action})",
        f"Message to {recipient}: {action} ({status}).\n",
        machine,
    )
    headers = EmailMessage()
    headers["Content-Type"] = "text/rfc822-headers"
    headers.set_payload(original_headers.decode("utf-8", "replace"))
    report.attach(headers)
    return report.as_bytes()


def mdn(
    *, to: str, original_message_id: str, recipient: str, subject: str, error: str | None = None
) -> bytes:
    """A message disposition notification: processed, or processed/Error with `code^libellé`."""
    disposition = "automatic-action/MDN-sent-automatically; processed"
    if error:
        disposition += f"/Error: {error}"
    machine = EmailMessage()
    machine["Content-Type"] = "message/disposition-notification"
    machine.set_payload(
        [
            _fields(
                [
                    ("Reporting-UA", f"{REPORTING}; sandbox"),
                    ("Original-Recipient", f"rfc822;{recipient}"),
                    ("Final-Recipient", f"rfc822;{recipient}"),
                    ("Original-Message-ID", original_message_id),
                    ("Disposition", disposition),
                ]
            )
        ]
    )
    prefix = f"[KO Intégration système !][{error.split('^')[0]}] " if error else "Lu : "
    return _report(
        "disposition-notification", to, prefix + subject, "Votre message a été traité.\n", machine
    ).as_bytes()
