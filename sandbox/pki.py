"""Throw-away certificate authorities for the sandbox peers: a test CA issues server certificates for the
loopback names and client certificates for the engine, written as PEM files, so that each side verifies
the other as it would in production. EC keys by default; RSA where a peer's cipher suites require it (the
MSSanté suites are ECDHE-RSA)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Validity = tuple[dt.datetime, dt.datetime]


def new_key(kind: KeyKind) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def valid_for(days: float, *, ended: bool = False) -> Validity:
    """From five minutes ago for `days`; `ended`: a validity that ended yesterday (an expired certificate)."""
    now = dt.datetime.now(dt.UTC)
    if ended:
        return now - dt.timedelta(days=60), now - dt.timedelta(days=1)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)


def subject_alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _key_usage(*, ca: bool, kind: KeyKind) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca and kind == "rsa",
        data_encipherment=False,
        key_agreement=not ca and kind == "ec",
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def write_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Authority:
    """A self-signed test CA that issues leaf certificates under names of one organisation."""

    organisation: str
    country: str | None
    kind: KeyKind
    key: PrivateKey
    cert: x509.Certificate

    @classmethod
    def create(
        cls, common_name: str, organisation: str, *, kind: KeyKind = "ec", country: str | None = None
    ) -> Authority:
        key = new_key(kind)
        name = _name(common_name, organisation, country)
        start, end = valid_for(365)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(days=400))
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True, kind=kind), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(organisation, country, kind, key, cert)

    def issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        *,
        validity: Validity | None = None,
        hosts: tuple[str, ...] = (),
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A leaf certificate and its new key; `usage` is its extended key usage (server or client auth)."""
        key = new_key(self.kind)
        start, end = validity or valid_for(30)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, self.organisation, self.country))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False, kind=self.kind), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False
            )
        return builder.sign(self.key, hashes.SHA256()), key

    def server(
        self, hosts: tuple[str, ...], *, validity: Validity | None = None
    ) -> tuple[x509.Certificate, PrivateKey]:
        return self.issue(hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, validity=validity, hosts=hosts)

    def client(self, common_name: str) -> tuple[x509.Certificate, PrivateKey]:
        return self.issue(common_name, ExtendedKeyUsageOID.CLIENT_AUTH)

    def crl(self, revoked: tuple[int, ...] = ()) -> bytes:
        """The CA's revocation list (PEM) listing the certificates of these serial numbers."""
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=7))
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - dt.timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organisation: str, country: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []
    attributes += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    return x509.Name(attributes)
