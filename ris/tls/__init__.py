"""One TLS policy for every outbound link: contexts (`policy`), revocation of the server's chain checked
after the handshake through OCSP then CRLs (`revocation`), httpx clients that check it before sending
(`http`)."""

from ris.tls.policy import MSSANTE_CIPHERS, TlsPolicy, client_policy
from ris.tls.revocation import CertificateRevoked, RevocationUnknown, TlsRefused
from ris.tls.settings import TlsSettings

__all__ = [
    "MSSANTE_CIPHERS",
    "CertificateRevoked",
    "RevocationUnknown",
    "TlsPolicy",
    "TlsRefused",
    "TlsSettings",
    "client_policy",
]
