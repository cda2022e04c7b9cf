"""The SMTP sandbox's PKI: one test CA and a server certificate for the loopback names, so that clients
verify the server against the CA like they would in production; the CA publishes its revocation (OCSP,
CRL: sandbox.pki), and `authority.revoke` revokes the server's certificate for real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from sandbox.pki import Authority, write_cert, write_key


@dataclass(frozen=True)
class TestPki:
    """`TestPki.create(folder)`: ca.pem (give it to the clients), server.pem and server.key."""

    __test__ = False  # not a pytest class

    ca: Path
    server_cert: Path
    server_key: Path
    authority: Authority

    @classmethod
    def create(cls, folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TestPki:
        folder.mkdir(parents=True, exist_ok=True)
        authority = Authority.create("TEST AC RIS SANDBOX", "RIS sandbox")
        cert, key = authority.server(hosts)
        pki = cls(folder / "ca.pem", folder / "server.pem", folder / "server.key", authority)
        write_cert(pki.ca, authority.cert)
        write_cert(pki.server_cert, cert)
        write_key(pki.server_key, key)
        return pki

    def revoke_server(self) -> int:
        """Revoke the server certificate in use (its OCSP answer and the CRL say so); returns its serial."""
        serial = x509.load_pem_x509_certificate(self.server_cert.read_bytes()).serial_number
        self.authority.revoke(serial)
        return serial
