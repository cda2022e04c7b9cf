"""The TLS policy of an outbound link: how its context is made and how its server is checked.

Every client the engine opens (MSSanté SMTP and IMAP, DMP, INSi, Pro Santé Connect, the site's mail relay)
builds its context here: TLS 1.2 at least, the server certificate and host name verified against the
link's CA bundle (the system CAs when none), the client certificate when the link has one. The MSSanté
links also pin TLS 1.2 and the four ECDHE-RSA suites of the MSSanté client reference (RIS.MSS.02-03).
After the handshake, before anything is sent, the verified chain is checked for revocation
(`ris.tls.revocation`); `TlsSettings` (the site settings' `tls`) says how strictly.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from ris.tls import peer
from ris.tls.revocation import check_chain
from ris.tls.settings import TlsSettings

# RIS.MSS.03, in OpenSSL's names: 0xC030, 0xC02F, 0xC028, 0xC027 (mssante.md §2).
MSSANTE_CIPHERS = (
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"
)


@dataclass(frozen=True)
class TlsPolicy:
    """One link's TLS: `link` names it in every refusal and log line (ids and hosts only)."""

    link: str
    ca_bundle: str | None = None  # PEM CAs the server certificate must chain to; None: the system CAs
    crl_file: str | None = None  # PEM CRLs the site keeps current itself, read before any responder
    client_cert: str | None = None
    client_key: str | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    mssante: bool = False  # TLS 1.2 only and the MSSanté suites (RIS.MSS.02-03)
    settings: TlsSettings = field(default_factory=TlsSettings)

    def context(self) -> ssl.SSLContext:
        """CERT_REQUIRED and the host name checked (PROTOCOL_TLS_CLIENT), TLS 1.2 at least."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.mssante:  # Python would negotiate TLS 1.3 otherwise
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(MSSANTE_CIPHERS)
        if self.ca_bundle:
            context.load_verify_locations(cafile=self.ca_bundle)
        else:
            context.load_default_certs()
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key, password=self.key_passphrase)
        return context

    def check(self, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> peer.Handshake:
        """After the handshake: the verified chain checked for revocation (blocking: OCSP / CRL fetches).
        Raises CertificateRevoked, or RevocationUnknown under hard-fail."""
        chain = peer.verified_chain(ssl_object, self.link)
        notes = check_chain(chain, link=self.link, settings=self.settings, crl_file=self.crl_file)
        return peer.handshake(ssl_object, self.link, notes)

    async def acheck(self, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> peer.Handshake:
        """`check` for a connection of the event loop: the fetches run in a thread, the loop goes on."""
        chain = peer.verified_chain(ssl_object, self.link)
        notes = await asyncio.to_thread(
            check_chain, chain, link=self.link, settings=self.settings, crl_file=self.crl_file
        )
        return peer.handshake(ssl_object, self.link, notes)


class ClientTls(Protocol):
    """The TLS fields of an endpoint where the engine presents the structure's certificate."""

    ca_bundle: str | None
    client_cert: str | None
    client_key: str | None
    key_passphrase: str | None
    tls: TlsSettings


def client_policy(link: str, endpoint: ClientTls, **extra: Any) -> TlsPolicy:
    """The policy of a link to `endpoint` (the DMP, the mail relay, the MSSanté operator): its CAs, the
    client certificate and the site's revocation settings; `extra` adds what the link needs beyond them."""
    return TlsPolicy(
        link,
        ca_bundle=endpoint.ca_bundle,
        client_cert=endpoint.client_cert,
        client_key=endpoint.client_key,
        key_passphrase=endpoint.key_passphrase,
        settings=endpoint.tls,
        **extra,
    )
