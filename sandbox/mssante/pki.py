"""A throw-away PKI standing in for the IGC Santé test range: one CA, an RSA server certificate (the four
MSSanté cipher suites are ECDHE-RSA, so an ECDSA server could not be reached) and the structure's client
certificate (ORG), written as PEM files, with the CA's CRL. `expired=True` issues a server certificate whose
validity ended; `revoked=True` lists the server certificate in the CRL."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_PASSPHRASE = b"sandbox-org-key"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MSSANTE SANDBOX"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey, passphrase: bytes | None = None) -> None:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)


def _leaf(
    subject: str,
    key: rsa.RSAPrivateKey,
    ca_name: x509.Name,
    ca_key: rsa.RSAPrivateKey,
    usage: x509.ObjectIdentifier,
    *,
    valid: tuple[dt.datetime, dt.datetime],
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


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
        now = dt.datetime.now(dt.UTC)
        ca_key, ca_name = _key(), _name("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS SANDBOX")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        server_valid = (
            (now - dt.timedelta(days=60), now - dt.timedelta(days=1))
            if expired
            else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=30))
        )
        server_key, client_key = _key(), _key()
        server = _leaf(
            hosts[0],
            server_key,
            ca_name,
            ca_key,
            ExtendedKeyUsageOID.SERVER_AUTH,
            valid=server_valid,
            names=names,
        )
        client = _leaf(
            "750000001 BAL APPLICATIVE SANDBOX",
            client_key,
            ca_name,
            ca_key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            valid=(now - dt.timedelta(minutes=5), now + dt.timedelta(days=30)),
        )
        pki = cls(
            folder / "ca.pem",
            folder / "server.pem",
            folder / "server.key",
            folder / "client.pem",
            folder / "client.key",
            folder / "crl.pem",
        )
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_name)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=7))
        )
        if revoked:
            crl = crl.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(server.serial_number)
                .revocation_date(now - dt.timedelta(minutes=1))
                .build()
            )
        pki.crl.write_bytes(crl.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
        _write_key(pki.server_key, server_key)
        _write_key(pki.client_key, client_key, CLIENT_PASSPHRASE)
        return pki
