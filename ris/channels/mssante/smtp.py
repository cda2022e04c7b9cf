"""Submitting one MSSanté mail to the operator with aiosmtplib (mssante.md §2, §7).

TLS always (STARTTLS or implicit TLS per operator), TLS 1.2 only with the four ECDHE-RSA suites of
RIS.MSS.03, the server certificate and host name verified against the configured CA bundle (IGC Santé in
production), the structure's client certificate (`ris.tls`). Once the handshake is done and before the
envelope is sent, the server's chain is checked for revocation (RIS.MSS.06: OCSP, then CRLs). A DSN is
requested in the envelope (RET, ENVID, NOTIFY, ORCPT) when the server advertises DSN. Faults are sorted as
the engine retries them (`ris.channels.mail.fault`): 4xx, connection faults and an unknown revocation
status are `MailTransient` (retry with the same Message-ID), 5xx, TLS trust failures and a revoked
certificate `MailRefused`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

from ris.channels.mail import (
    MailConfigError,
    client_pair,
    fault,
    hang_up,
    refused_recipient,
    smtp_client,
)
from ris.tls import TlsPolicy, TlsRefused, TlsSettings, client_policy


@dataclass(frozen=True)
class OperatorConfig:
    """The MSSanté operator's SMTP entry point and the structure's certificate (blocks.mssante builds it)."""

    host: str
    port: int
    security: str = "starttls"
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    key_passphrase: str | None = None
    crl_file: str | None = None  # PEM CRLs of the CA chain, refreshed by the site (RIS.MSS.06)
    timeout_s: float = 30.0
    tls: TlsSettings = field(default_factory=TlsSettings)  # the site's revocation checking

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls"):
            raise MailConfigError(
                f"security {self.security!r}: MSSanté needs TLS (starttls or tls, RIS.MSS.01)"
            )
        client_pair(self.client_cert, self.client_key)

    def policy(self) -> TlsPolicy:
        # RIS.MSS.02-03: TLS 1.2 only, the four suites; the CRLs the site keeps (RIS.MSS.06)
        return client_policy(
            f"MSSanté SMTP {self.host}:{self.port}", self, crl_file=self.crl_file, mssante=True
        )


def xtext(value: str) -> str:
    """RFC 3461 xtext: '+', '=' and characters outside 33-126 as +HH."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)


async def submit(
    message: EmailMessage, config: OperatorConfig, *, sender: str, recipient: str, envid: str
) -> tuple[str, bool]:
    """Send `message` to `recipient`; returns the reply to DATA and whether a DSN was requested."""
    policy = config.policy()
    client = smtp_client(config.host, config.port, config.security, policy, config.timeout_s)
    try:
        await client.connect()
        try:
            await policy.acheck(client.get_transport_info("ssl_object"))  # before the envelope leaves
            if not client.esmtp_extensions:  # STARTTLS forgets what the server offered: ask again
                await client.ehlo()
            dsn = client.supports_extension("dsn")
            mail_options = ["RET=HDRS", f"ENVID={xtext(envid)}"] if dsn else []
            rcpt_options = ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{xtext(recipient)}"] if dsn else []
            errors, response = await client.send_message(
                message,
                sender=sender,
                recipients=[recipient],
                mail_options=mail_options,
                rcpt_options=rcpt_options,
            )
        finally:
            await hang_up(client)
    except (TlsRefused, OSError, aiosmtplib.SMTPException) as exc:
        raise fault(exc) from exc
    refused_recipient(errors)
    return response[:128], dsn
