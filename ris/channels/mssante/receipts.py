"""Receipts of direct MSSanté mails (mssante.md §7), read from the application mailbox.

DSN (RFC 3464, multipart/report delivery-status): correlated on Original-Envelope-Id (our ENVID, the
delivery's idempotency key; compared without case, as relays may upper-case it), else on the Message-ID
of the returned headers; `delivered` → acknowledged, `failed` → failed with the status code. MDN (RFC 8098,
disposition-notification): correlated on Original-Message-ID; `processed` → read, `processed/Error:
code^libellé` → failed with the code. A delivery never moves backwards, so a receipt applied twice (or a
DSN after the MDN) changes nothing.

The mailbox is read over IMAP under the MSSanté TLS policy (RIS.MSS.01-06, `ris.tls`): TLS 1.2 only, the
four suites, the server's chain checked for revocation before the login is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.tls import TlsPolicy, TlsSettings

RANK = {
    DeliveryStatus.pending: 0,
    DeliveryStatus.sent: 1,
    DeliveryStatus.acknowledged: 2,
    DeliveryStatus.read: 3,
}


@dataclass(frozen=True)
class Receipt:
    kind: str  # "dsn" or "mdn"
    outcome: str  # delivered / failed / delayed / relayed / expanded, or read / error
    recipient: str
    envid: str | None = None
    message_id: str | None = None
    code: str | None = None  # DSN Status, or the MDN error code^libellé


def _value(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())


def _address(field: str) -> str:
    return field.split(";", 1)[-1].strip()


def parse(data: bytes) -> list[Receipt]:
    """The receipts a mail carries (none when it is not a DSN or an MDN)."""
    mail = message_from_bytes(data, policy=compat32)
    if mail.get_content_type() != "multipart/report":
        return []
    found: list[Receipt] = []
    returned_id = None
    for part in mail.get_payload():
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822"):
            inner = (
                part.get_payload(0)
                if part.is_multipart()
                else message_from_bytes(part.get_payload(decode=True) or b"")
            )
            returned_id = _value(inner, "Message-ID") or None
    for part in mail.get_payload():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            blocks = part.get_payload()
            envid = _value(blocks[0], "Original-Envelope-Id") or None
            for block in blocks[1:]:
                found.append(
                    Receipt(
                        "dsn",
                        _value(block, "Action").lower(),
                        _address(_value(block, "Final-Recipient")),
                        envid=envid,
                        message_id=returned_id,
                        code=_value(block, "Status") or None,
                    )
                )
        elif kind == "message/disposition-notification":
            block = (
                part.get_payload(0)
                if part.is_multipart()
                else message_from_bytes(part.get_payload(decode=True))
            )
            disposition = _value(block, "Disposition")
            error = disposition.split("/Error:", 1)[1].strip() if "/Error:" in disposition else None
            found.append(
                Receipt(
                    "mdn",
                    "error" if error else "read",
                    _address(_value(block, "Final-Recipient")),
                    message_id=_value(block, "Original-Message-ID") or None,
                    code=error,
                )
            )
    return found


def _delivery(session: Session, receipt: Receipt) -> Delivery | None:
    direct = (Delivery.route == "direct", Delivery.channel.in_([Channel.mss_ps, Channel.mss_patient]))
    if receipt.envid:
        stmt = select(Delivery).where(
            sa.func.lower(Delivery.idempotency_key) == receipt.envid.lower(), *direct
        )
        row = session.exec(stmt).first()
        if row is not None:
            return row
    if receipt.message_id:
        stmt = select(Delivery).where(Delivery.external_id == receipt.message_id.strip().strip("<>"), *direct)
        return session.exec(stmt).first()
    return None


def apply(session: Session, receipt: Receipt) -> str:
    """Move the correlated delivery on; returns what was done (ids only, for the logs)."""
    row = _delivery(session, receipt)
    if row is None:
        return "no matching delivery"
    session.refresh(row, with_for_update=True)
    if row.status is DeliveryStatus.failed:
        return f"delivery {row.id} already failed"
    if receipt.outcome in ("failed", "error"):
        what = "DSN failed" if receipt.kind == "dsn" else "MDN processed/Error"
        deliveries.set_status(session, row, DeliveryStatus.failed, f"{what}: {receipt.code or '?'}"[:500])
        return f"delivery {row.id} failed"
    target = {"delivered": DeliveryStatus.acknowledged, "relayed": DeliveryStatus.acknowledged}.get(
        receipt.outcome, DeliveryStatus.read if receipt.outcome == "read" else None
    )
    if target is None or RANK.get(row.status, 0) >= RANK[target]:
        return f"delivery {row.id} unchanged"
    detail = (
        f"DSN {receipt.outcome} {receipt.code or ''}".strip() if receipt.kind == "dsn" else "MDN processed"
    )
    deliveries.set_status(session, row, target, detail)
    return f"delivery {row.id} {target.value}"


def apply_mail(session: Session, data: bytes) -> list[str]:
    """Apply every receipt one mail carries; [] when it carries none (not a DSN nor an MDN)."""
    return [apply(session, receipt) for receipt in parse(data)]


@dataclass(frozen=True)
class ImapConfig:
    """The application mailbox over IMAP with implicit TLS (RIS.MSS.01-05 apply to IMAP too)."""

    host: str
    port: int
    user: str
    password: str
    ca_bundle: str | None = None
    crl_file: str | None = None
    timeout_s: float = 30.0
    tls: TlsSettings = field(default_factory=TlsSettings)

    def policy(self) -> TlsPolicy:
        return TlsPolicy(
            f"MSSanté IMAP {self.host}:{self.port}",
            ca_bundle=self.ca_bundle,
            crl_file=self.crl_file,
            mssante=True,
            settings=self.tls,
        )


def collect(config: ImapConfig, handle: Callable[[bytes], bool]) -> dict[str, int]:
    """Read every unseen mail of the INBOX without marking it, give it to `handle` (which applies it and
    says whether it was a receipt), then flag the receipts \\Seen so that the next run skips them. Blocking:
    call it in a thread. A server whose certificate is revoked (or of unknown status, hard-fail) is left
    before the login: TlsRefused, naming the link."""
    from imapclient import IMAPClient

    counts = {"unseen": 0, "receipts": 0}
    policy = config.policy()
    with IMAPClient(
        config.host, port=config.port, ssl=True, ssl_context=policy.context(), timeout=config.timeout_s
    ) as client:
        policy.check(client.socket())  # before the credentials leave
        client.login(config.user, config.password)
        client.select_folder("INBOX")
        uids = client.search(["UNSEEN"])
        counts["unseen"] = len(uids)
        done = []
        for uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items() if uids else []:
            if handle(data[b"BODY[]"]):
                done.append(uid)
        if done:
            client.add_flags(done, [b"\\Seen"])
        counts["receipts"] = len(done)
    return counts
