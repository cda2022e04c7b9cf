"""The MSSanté operator stand-in: the sandbox SMTP server (sandbox/smtp) with what an operator adds.

- STARTTLS (or implicit TLS) with an RSA certificate from a test CA made at start (`MssPki`), TLS 1.2 at
  least, and the client certificate required and checked against that CA (mutual TLS, the structure's
  ORG certificate); a client without one is cut during the handshake.
- DSN (RFC 3461) advertised in EHLO; RET / ENVID / NOTIFY / ORCPT accepted and kept per message
  (aiosmtpd upper-cases parameters, so the ENVID is kept upper-cased).
- Every accepted message stored as an .eml file under `folder` (the demo's `mss-received/`); a Message-ID
  seen before is flagged `duplicate` and not stored twice.
- Switches: `data_reply` / `rcpt_reply` (a fixed reply, e.g. "550 5.1.1 ..."), `transient_failures` (the
  next N DATA commands answer 451, then it accepts), `disconnects` (the next N DATA commands drop the
  connection), `delay_s` (slowness before each DATA reply).
- Receipts, with `imap_user`: the sender's mailbox is a real IMAP server (Dovecot, `ImapMailbox`) and
  every accepted message gets a DSN back when it asked for one (NOTIFY=SUCCESS: delivered; `bounce_status`
  set, e.g. "5.1.1": failed), and an MDN when it carries Disposition-Notification-To and `read_receipts`
  is on (`mdn_error`, e.g. "902^Erreur d'intégration": processed/Error).
- Its CA publishes revocation (OCSP, CRL: sandbox.pki): `revoke_server_certificate` revokes the certificate
  SMTP and IMAP present, `replace_server_certificate` puts a new one in place for both.
Never imports `ris`.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.mssante import receipts
from sandbox.mssante.imap import ImapMailbox
from sandbox.mssante.pki import MssPki
from sandbox.smtp.server import Received, SmtpSandbox, _Handler

DSN_PARAMETERS = ("RET", "ENVID", "NOTIFY", "ORCPT")


@dataclass(frozen=True)
class Envelope_:
    """The DSN parameters a message came with, who connected (the client certificate's subject) and the
    TLS suite the session negotiated."""

    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    client_subject: str | None
    tls_cipher: str | None = None


class _DsnSMTP(SMTP):
    """Stock aiosmtpd answers 555 to DSN parameters: take them off before it checks, keep them on the
    envelope (aiosmtpd already stores the raw option lists there)."""

    def _getparams(self, params):  # type: ignore[no-untyped-def]
        parsed = super()._getparams(params)
        if parsed is not None:
            for name in DSN_PARAMETERS:
                parsed.pop(name, None)
        return parsed


def _ssl_object(server: SMTP) -> ssl.SSLObject | None:
    return server.transport.get_extra_info("ssl_object") if server.transport else None


def _cipher(server: SMTP) -> str | None:
    ssl_object = _ssl_object(server)
    return ssl_object.cipher()[0] if ssl_object is not None else None


def _subject(server: SMTP) -> str | None:
    ssl_object = _ssl_object(server)
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    return ",".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)


class _MssHandler(_Handler):
    owner: MssSandbox

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-DSN")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        if reply.startswith("250"):  # aiosmtpd keeps the options only when no hook answers
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        if owner.delay_s:
            await asyncio.sleep(owner.delay_s)
        if owner.disconnects > 0:
            owner.disconnects -= 1
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 connection dropped (sandbox switch)"
        if owner.transient_failures > 0:
            owner.transient_failures -= 1
            return "451 4.3.0 Temporary failure, try again later (sandbox switch)"
        if owner.data_reply:
            return owner.data_reply
        reply = await super().handle_DATA(server, session, envelope)
        owner.envelopes.append(
            Envelope_(
                tuple(envelope.mail_options), tuple(envelope.rcpt_options), _subject(server), _cipher(server)
            )
        )
        if owner.mailbox is not None and not owner.received[-1].duplicate:
            owner.return_receipts(owner.received[-1], owner.envelopes[-1])
        return reply


class MssSandbox(SmtpSandbox):
    """`with MssSandbox(folder=...) as mss:` then `mss.port`, `mss.pki` (ca.pem, client.pem/.key),
    `mss.received` (one per accepted message) and `mss.envelopes` (same order)."""

    smtp_class = _DsnSMTP
    handler_class = _MssHandler

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        folder: Path | None = None,
        security: str = "starttls",
        tls_dir: Path | None = None,
        require_client_cert: bool = True,
        expired_server_cert: bool = False,
        revoked_server_cert: bool = False,
        hostname: str = "smtp.mssante.sandbox.localhost",
        imap_user: str | None = None,
        imap_password: str = "sandbox-imap",
    ) -> None:
        if security not in ("starttls", "tls"):
            raise ValueError(f"security {security!r}: an MSSanté operator speaks TLS only (starttls or tls)")
        super().__init__(host, port, folder=folder, security=security, tls_dir=tls_dir, hostname=hostname)  # type: ignore[arg-type]
        self.require_client_cert = require_client_cert
        self.expired_server_cert = expired_server_cert
        self.revoked_server_cert = revoked_server_cert
        self.mss_pki: MssPki | None = None
        self._context: ssl.SSLContext | None = None
        self.transient_failures = 0
        self.disconnects = 0
        self.delay_s = 0.0
        self.envelopes: list[Envelope_] = []
        self.imap_user, self.imap_password = imap_user, imap_password
        self.mailbox: ImapMailbox | None = None
        self.bounce_status: str | None = None
        self.read_receipts = False
        self.mdn_error: str | None = None

    def start(self) -> MssSandbox:
        super().start()
        if self.imap_user:
            try:
                self.mailbox = ImapMailbox(
                    self.mss_pki.server_cert,
                    self.mss_pki.server_key,
                    user=self.imap_user,
                    password=self.imap_password,
                ).start()
            except BaseException:
                super().stop()
                raise
        return self

    def stop(self) -> None:
        if self.mailbox is not None:
            self.mailbox.stop()
            self.mailbox = None
        super().stop()

    def return_receipts(self, received: Received, envelope: Envelope_) -> None:
        """The DSN and the MDN the receiving side sends back, into the sender's IMAP mailbox."""
        parsed = message_from_bytes(received.data)
        options = dict(o.split("=", 1) for o in envelope.mail_options + envelope.rcpt_options if "=" in o)
        headers = b"".join(f"{k}: {v}\r\n".encode() for k, v in parsed.items() if k.lower() != "subject")
        for rcpt in received.rcpt_tos:
            if self.bounce_status and "FAILURE" in options.get("NOTIFY", ""):
                action, status = "failed", self.bounce_status
            elif "SUCCESS" in options.get("NOTIFY", ""):
                action, status = "delivered", "2.0.0"
            else:
                continue
            self.mailbox.deliver(
                receipts.dsn(
                    to=received.mail_from,
                    envid=options.get("ENVID"),
                    recipient=rcpt,
                    action=action,
                    status=status,
                    original_headers=headers,
                )
            )
        asks_mdn = parsed.get("Disposition-Notification-To")
        if self.read_receipts and asks_mdn and not self.bounce_status:
            for rcpt in received.rcpt_tos:
                self.mailbox.deliver(
                    receipts.mdn(
                        to=asks_mdn,
                        original_message_id=received.message_id or "",
                        recipient=rcpt,
                        subject="XDM/1.0/DDM",
                        error=self.mdn_error,
                    )
                )

    @property
    def ca_pem(self) -> Path | None:
        return self.mss_pki.ca if self.mss_pki else None

    def revoke_server_certificate(self) -> int:
        """The CA revokes the certificate SMTP and IMAP present (OCSP, CRL); returns its serial."""
        return self.mss_pki.revoke_server()

    def replace_server_certificate(self) -> int:
        """A new certificate from the CA, presented from the next connection on, SMTP and IMAP."""
        serial = self.mss_pki.renew_server()
        self._context.load_cert_chain(str(self.mss_pki.server_cert), str(self.mss_pki.server_key))
        if self.mailbox is not None:
            self.mailbox.replace_certificate(self.mss_pki.server_cert, self.mss_pki.server_key)
        return serial

    def record(self, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes, tls: str | None) -> Received:
        # A duplicate Message-ID is flagged, never stored twice (the .eml of the first stays the proof).
        folder = self.folder
        message_id = message_from_bytes(data).get("Message-ID")
        if message_id and message_id.strip() in self._seen:
            self.folder = None
        try:
            return super().record(mail_from, rcpt_tos, data, tls)
        finally:
            self.folder = folder

    def accepted(self) -> list[Received]:
        """The messages stored, duplicates left out."""
        return [r for r in self.received if not r.duplicate]

    def _tls_context(self) -> ssl.SSLContext:
        folder = self._tls_dir
        if folder is None:
            self._own_tls_dir = tempfile.TemporaryDirectory(prefix="sandbox-mss-tls-")
            folder = Path(self._own_tls_dir.name)
        hosts = tuple(dict.fromkeys(("localhost", "127.0.0.1", self.host)))
        self.mss_pki = MssPki.create(
            folder, hosts, expired=self.expired_server_cert, revoked=self.revoked_server_cert
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.mss_pki.server_cert), str(self.mss_pki.server_key))
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.mss_pki.ca))
        self._context = context
        return context
