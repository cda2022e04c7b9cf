"""A throw-away IGC-Santé stand-in for the certificate tests: one ORG authority (the sandboxes' test-CA
builder) that signs each radiologist's RPPS-Rang certificate (and, for the INSi sandbox, a server
certificate)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from sandbox.pki import Authority, write_cert, write_key

NOW = dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class OrgAuthority:
    """Stands in for the IGC-Santé ORG authority: it signs each radiologist's certificate."""

    authority: Authority
    pem: Path


def org_authority(folder: Path) -> OrgAuthority:
    authority = Authority.create("AC TEST ORG", "IGC-SANTE TEST")
    pem = folder / "ca.pem"
    write_cert(pem, authority.cert)
    return OrgAuthority(authority, pem)


def certificate(
    ca: OrgAuthority,
    folder: Path,
    name: str,
    *,
    days: tuple[int, int] = (-30, 365),
    passphrase: str | None = None,
    cn: str | None = None,
    server_ip: str | None = None,
) -> tuple[Path, Path]:
    """(cert.pem, key.pem) named `name`, with subject CN `cn` (default `name`), valid `days` around now;
    `server_ip` makes a server certificate for that address."""
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_ip else ExtendedKeyUsageOID.CLIENT_AUTH
    cert, key = ca.authority.issue(
        cn or name,
        usage,
        validity=(NOW + dt.timedelta(days=days[0]), NOW + dt.timedelta(days=days[1])),
        hosts=(server_ip,) if server_ip else (),
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    write_cert(cert_path, cert)
    write_key(key_path, key, passphrase.encode() if passphrase else None)
    return cert_path, key_path


def sha256(cert_path: Path) -> str:
    """The certificate's fingerprint, as a server sees it in the handshake."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
