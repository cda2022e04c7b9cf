"""A throw-away PKI standing in for the IGC Santé test range: one CA, an RSA server certificate (the four
MSSanté cipher suites are ECDHE-RSA, so an ECDSA server could not be reached) and the structure's client
certificate (ORG), written as PEM files, with the CA's CRL. `expired=True` issues a server certificate whose
validity ended; `revoked=True` revokes the server certificate (its OCSP answer and the CRLs say so).
`revoke_server` and `renew_server` do the same to a running peer's certificate: the CA revokes it, or
issues a new one over the same files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from sandbox.pki import Authority, valid_for, write_cert, write_key

CLIENT_PASSPHRASE = b"sandbox-org-key"


@dataclass(frozen=True)
class MssPki:
    """ca.pem (the operator's and the structure's CA), server.pem/.key, client.pem/.key (key encrypted
    with CLIENT_PASSPHRASE), crl.pem (the CA's CRL as a site would download it)."""

    __test__ = False

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    crl: Path
    authority: Authority
    hosts: tuple[str, ...]

    @classmethod
    def create(
        cls,
        folder: Path,
        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
        *,
        expired: bool = False,
        revoked: bool = False,
    ) -> MssPki:
        folder.mkdir(parents=True, exist_ok=True)
        authority = Authority.create(
            "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS SANDBOX", "MSSANTE SANDBOX", kind="rsa", country="FR"
        )
        server, server_key = authority.server(hosts, validity=valid_for(30, ended=expired))
        client, client_key = authority.client("750000001 BAL APPLICATIVE SANDBOX")
        pki = cls(
            folder / "ca.pem",
            folder / "server.pem",
            folder / "server.key",
            folder / "client.pem",
            folder / "client.key",
            folder / "crl.pem",
            authority,
            hosts,
        )
        if revoked:
            authority.revoke(server.serial_number)
        pki.crl.write_bytes(authority.crl())
        write_cert(pki.ca, authority.cert)
        write_cert(pki.server_cert, server)
        write_cert(pki.client_cert, client)
        write_key(pki.server_key, server_key)
        write_key(pki.client_key, client_key, CLIENT_PASSPHRASE)
        return pki

    def server_serial(self) -> int:
        return x509.load_pem_x509_certificate(self.server_cert.read_bytes()).serial_number

    def revoke_server(self) -> int:
        """Revoke the server certificate in use (OCSP and the published CRL say so, crl.pem too)."""
        serial = self.server_serial()
        self.authority.revoke(serial)
        self.crl.write_bytes(self.authority.crl())
        return serial

    def renew_server(self) -> int:
        """A new server certificate and key over server.pem / server.key (the peer reloads them)."""
        cert, key = self.authority.server(self.hosts)
        write_cert(self.server_cert, cert)
        write_key(self.server_key, key)
        return cert.serial_number
