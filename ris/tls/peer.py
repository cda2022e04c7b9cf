"""What a TLS connection negotiated and the chain it verified, read right after the handshake.

Python 3.13 names it `get_verified_chain()`; 3.10 to 3.12 have the same method, unnamed in the docs, on the
connection's `_sslobj`. `getpeercert(binary_form=True)` alone gives the leaf without its issuer, which an
OCSP request and a CRL signature check both need.

Each checked connection is logged by `ris.tls` (the link, the protocol, the suite, what answered about the
certificates): the "connection logs" the Ségur proof of RIS.MSS.02-06 asks for, hosts and serials only.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from cryptography import x509

from ris.tls.revocation import RevocationUnknown

log = logging.getLogger("ris.tls")


@dataclass(frozen=True)
class Handshake:
    """What one connection negotiated, and what answered about its certificates."""

    version: str  # e.g. TLSv1.2
    cipher: str  # OpenSSL's name of the suite
    revocation: tuple[str, ...]


def _der(entry: bytes | object) -> bytes:
    """A chain entry as DER: bytes on 3.13, an `_ssl.Certificate` (PEM by default) before."""
    if isinstance(entry, bytes):
        return entry
    return ssl.PEM_cert_to_DER_cert(entry.public_bytes())  # type: ignore[attr-defined]


def verified_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket, link: str) -> list[x509.Certificate]:
    """The chain the handshake verified, the server's certificate first, its trust anchor last."""
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        getter = getattr(owner, "get_verified_chain", None)
        if getter is not None:
            chain = [x509.load_der_x509_certificate(_der(entry)) for entry in getter() or []]
            if chain:
                return chain
    raise RevocationUnknown(link, "the server's verified certificate chain cannot be read on this Python")


def handshake(ssl_object: ssl.SSLObject | ssl.SSLSocket, link: str, notes: list[str]) -> Handshake:
    cipher = ssl_object.cipher()
    shaken = Handshake(ssl_object.version() or "?", cipher[0] if cipher else "?", tuple(notes))
    unchecked = any("(soft-fail)" in note for note in notes)  # let through unchecked: worth a warning
    level = logging.WARNING if unchecked else logging.INFO
    log.log(level, "%s: %s %s; %s", link, shaken.version, shaken.cipher, "; ".join(notes))
    return shaken
