"""Mail from the site's application mailbox (SMTP / MSSanté sender) with aiosmtplib: the reminder message
and the send itself.

TLS is STARTTLS or implicit TLS, TLS 1.2 at least, the server certificate verified against the configured
CA bundle (the system CAs when none) and checked for revocation before anything is sent (`ris.tls`). A
plain connection is allowed to a loopback host only. Faults are sorted the way the engine retries: 4xx
replies, connection faults and an unknown revocation status are transient (`MailTransient`), 5xx replies,
a server certificate not trusted or revoked and a refused TLS handshake are permanent (`MailRefused`, with
the code and text): `fault`, the one sorting of SMTP faults, which the MSSanté sender uses too. The
Message-ID is the delivery's idempotency key, minted once: a retry after a crash resends the very same
message id.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Literal

import aiosmtplib

from ris.clock import local
from ris.tls import RevocationUnknown, TlsPolicy, TlsRefused, TlsSettings, client_policy

Security = Literal["starttls", "tls", "none"]
SECURITIES: tuple[str, ...] = ("starttls", "tls", "none")


class MailConfigError(ValueError):
    """The sender's configuration cannot be used (names the field and the rule)."""


class MailTransient(Exception):
    """A fault that may pass: 4xx reply, refused or cut connection, timeout. Retry with the same message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailRefused(Exception):
    """A permanent refusal (5xx reply, or a TLS certificate the sender cannot trust): never retried."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def tls_refusal(exc: TlsRefused) -> MailRefused | MailTransient:
    """A server refused by the TLS policy: a revoked certificate for good, an unknown status for now."""
    reason = str(exc)[:400]
    return MailTransient(reason) if isinstance(exc, RevocationUnknown) else MailRefused(reason)


def client_pair(client_cert: str | None, client_key: str | None) -> None:
    """A client certificate goes with its private key: both or neither (the relay's and the operator's)."""
    if (client_cert is None) != (client_key is None):
        raise MailConfigError("client_cert and client_key: give both or neither")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail; `blocks.mail.MailSender.config()` builds one from the saved block."""

    host: str
    port: int
    from_address: str
    from_label: str = ""
    security: Security = "starttls"
    ca_bundle: str | None = None  # PEM file of the CAs that may sign the server certificate; None: system
    client_cert: str | None = None
    client_key: str | None = None
    key_passphrase: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    tls: TlsSettings = field(default_factory=TlsSettings)  # the site's revocation checking

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise MailConfigError(f"security {self.security!r}: must be one of {', '.join(SECURITIES)}")
        if self.security == "none" and not is_loopback(self.host):
            raise MailConfigError(
                f"security 'none': allowed for a loopback host only, not {self.host!r} (use starttls or tls)"
            )
        client_pair(self.client_cert, self.client_key)
        if "@" not in self.from_address:
            raise MailConfigError(f"from_address {self.from_address!r}: must be a mail address")

    def policy(self) -> TlsPolicy:
        """Server certificate and host name verified, TLS 1.2 minimum, the client certificate if any."""
        return client_policy(f"mail relay {self.host}:{self.port}", self)


@dataclass(frozen=True)
class Reminder:
    """What a reminder says: ids and dates only (it goes to a radiologist of the site, and it is logged)."""

    kind: Literal["draft", "provisional", "announcement"]
    report_id: str
    version: int
    accession_number: str
    since: dt.datetime


def _local(moment: dt.datetime, timezone: str) -> str:
    return local(moment, timezone).strftime("%d/%m/%Y à %H:%M")


def reminder_message(
    reminder: Reminder,
    *,
    message_id: str,
    to: str,
    config: SmtpConfig,
    now: dt.datetime,
    timezone: str = "Europe/Paris",
) -> EmailMessage:
    """The reminder mail, in French; `message_id` is the delivery's idempotency key (no angle brackets)."""
    since = _local(reminder.since, timezone)
    if reminder.kind == "draft":
        subject = f"Rappel : compte rendu {reminder.report_id} non validé depuis le {since}"
        lines = [
            "Bonjour,",
            "",
            f"Le compte rendu {reminder.report_id} (numéro d'examen {reminder.accession_number}) est en "
            f"cours de rédaction depuis le {since} et n'est pas encore validé.",
            "Il ne peut être diffusé qu'une fois validé.",
            "Merci de le compléter et de le valider dans le RIS.",
        ]
    elif reminder.kind == "provisional":
        subject = f"Rappel : compte rendu {reminder.report_id} provisoire depuis le {since}"
        lines = [
            "Bonjour,",
            "",
            f"Le compte rendu {reminder.report_id} (numéro d'examen {reminder.accession_number}) est au "
            f"statut provisoire depuis le {since}.",
            "Il attend l'avis d'autres radiologues et ne peut être diffusé qu'une fois validé.",
            "Merci de le relire et de le valider dans le RIS.",
        ]
    else:
        subject = f"Rappel : annonce au patient non enregistrée — compte rendu {reminder.report_id}"
        lines = [
            "Bonjour,",
            "",
            f"Le compte rendu {reminder.report_id} version {reminder.version} (numéro d'examen "
            f"{reminder.accession_number}), validé le {since}, nécessite une annonce au patient qui n'est "
            "pas encore enregistrée.",
            "Le document reste invisible au patient dans son DMP et ne lui est pas envoyé tant que "
            "l'annonce n'est pas enregistrée dans le RIS.",
        ]
    lines += ["", "Message automatique du RIS : merci de ne pas y répondre."]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = (
        formataddr((config.from_label, config.from_address)) if config.from_label else (config.from_address)
    )
    message["To"] = to
    message["Date"] = format_datetime(now.astimezone(dt.UTC))
    message["Message-ID"] = f"<{message_id}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message["X-RIS-Report"] = reminder.report_id
    message.set_content("\n".join(lines) + "\n")
    return message


def reply_fault(code: int, text: str) -> MailRefused | MailTransient:
    """An SMTP reply that refused: a 5xx for good, a 4xx for now."""
    reason = f"SMTP {code} {text}".strip()[:400]
    return MailRefused(reason, code) if code >= 500 else MailTransient(reason)


def fault(exc: TlsRefused | OSError | aiosmtplib.SMTPException) -> MailRefused | MailTransient:
    """A fault of an SMTP exchange (the relay's or the MSSanté operator's), sorted as the engine retries it:
    5xx replies and TLS trust failures (the certificate, the handshake) for good, 4xx replies and
    connection faults for now. aiosmtplib wraps a failed handshake in its connection errors: the cause
    decides."""
    if isinstance(exc, TlsRefused):
        return tls_refusal(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0]
        return reply_fault(refused.code, refused.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return reply_fault(exc.code, exc.message)
    cause = exc
    if isinstance(
        exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)
    ):
        cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return MailRefused(f"TLS: server certificate not trusted ({cause.verify_message})")
    if isinstance(cause, ssl.SSLError):
        return MailRefused(f"TLS handshake refused: {cause.reason or cause}"[:400])
    return MailTransient(f"{type(exc).__name__}: {exc}"[:400])


def refused_recipient(errors: dict[str, aiosmtplib.SMTPResponse]) -> None:
    """The refusal of a recipient the server turned down while it took the others (one per message here)."""
    if errors:
        code, text = next(iter(errors.values()))
        raise reply_fault(code, text)


def tls_context(policy: TlsPolicy) -> ssl.SSLContext:
    """The policy's TLS context; a CA bundle or client key that cannot be read is refused (fix, then
    retry)."""
    try:
        return policy.context()
    except (OSError, ssl.SSLError) as exc:
        raise MailRefused(f"TLS configuration: {type(exc).__name__}: {exc}"[:400]) from exc


async def hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT; a server that answers it badly is simply left."""
    if client.is_connected:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()


def smtp_client(host: str, port: int, security: str, policy: TlsPolicy, timeout_s: float) -> aiosmtplib.SMTP:
    """A client of the relay or the MSSanté operator: implicit TLS or STARTTLS under `policy`, or plain
    SMTP where the site's relay says `none` (a relay on loopback)."""
    tls = security != "none"
    return aiosmtplib.SMTP(
        hostname=host,
        port=port,
        use_tls=security == "tls",
        start_tls=security == "starttls",
        tls_context=tls_context(policy) if tls else None,
        validate_certs=tls,
        timeout=timeout_s,
    )


async def send(message: EmailMessage, config: SmtpConfig) -> str:
    """Submit `message`; returns the server's reply to DATA. MailTransient / MailRefused otherwise."""
    policy = config.policy()
    client = smtp_client(config.host, config.port, config.security, policy, config.timeout_s)
    try:
        await client.connect()
        try:
            if config.security != "none":  # before the credentials and the message leave
                await policy.acheck(client.get_transport_info("ssl_object"))
            if config.username:
                await client.login(config.username, config.password or "")
            errors, response = await client.send_message(message)
        finally:
            await hang_up(client)
    except (TlsRefused, OSError, aiosmtplib.SMTPException) as exc:
        raise fault(exc) from exc
    refused_recipient(errors)  # one recipient per reminder: a partial refusal is that recipient's refusal
    return response[:128]
