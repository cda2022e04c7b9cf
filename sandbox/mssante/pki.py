"""A throw-away PKI standing in for the IGC Santé test range: one CA, an RSA server certificate (the four
MSSanté cipher suites are ECDHE-RSA, so an ECDSA server could not be reached) and the structure's client
certificate (ORG), written as PEM files, with the CA's CRL. `expired=True` issues a server certificate whose
validity ended; `revoked=True` lists the server certificate in the CRL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox.pki import Authority, valid_for, write_cert, write_key

CLIENT_PASSPHRASE = b"sandbox-org-key"


@dataclass(frozen=True)
class MssPki:
    """ca.pem (the operator's and the structure's CA), server.pem/.key, client.pem/.key (key encrypted
    with CLIENT_PASSPHRASE)."""

    __test__ = False

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    crl: Path

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
        )
        pki.crl.write_bytes(authority.crl((server.serial_number,) if revoked else ()))
        write_cert(pki.ca, authority.cert)
        write_cert(pki.server_cert, server)
        write_cert(pki.client_cert, client)
        write_key(pki.server_key, server_key)
        write_key(pki.client_key, client_key, CLIENT_PASSPHRASE)
        return pki
