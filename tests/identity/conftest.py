"""Fixtures of the identity tests: the INSi sandbox on loopback, a client for it, test certificates."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ris.identity.insi_client import InsiClient, InsiSettings
from sandbox.insi import InsiSandbox, TlsFiles


@pytest.fixture(scope="session")
def wsdl(shared: Path) -> Path:
    return shared / "reference/insi/wsdl/DESIR_ICIR_EXP_1.5.0.wsdl"


def settings_for(url: str, wsdl: Path, **kw) -> InsiSettings:
    values = dict(
        url=url,
        wsdl_path=wsdl,
        idam="RIS-IDAM-TEST",
        lps_name="RIS-ENGINE",
        lps_version="0.1.0",
        lps_instance="3f2c9a51-6b0e-4d8e-9d7a-2a1f6e7c0b11",
        emetteur="ris-engine",
        timeout=5.0,
    )
    values.update(kw)
    return InsiSettings(**values)


@pytest.fixture
async def insi_sandbox(wsdl: Path) -> AsyncIterator[InsiSandbox]:
    async with InsiSandbox(port=0, wsdl=wsdl) as sandbox:
        yield sandbox


@pytest.fixture
async def insi_client(insi_sandbox: InsiSandbox, wsdl: Path) -> AsyncIterator[InsiClient]:
    async with InsiClient(settings_for(insi_sandbox.url, wsdl)) as client:
        yield client


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, issuer_key, issuer: str, *, ca: bool = False, san: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]), critical=False
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(folder: Path, name: str, key, cert, password: bytes | None = None) -> tuple[Path, Path]:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA (stand-in for TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS), a server certificate for
    127.0.0.1 and client certificates with CN INSI-AUTO (password-protected key) and a wrong CN."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _issue(
        "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS",
        None,
        "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS",
        ca=True,
    )
    ca_path, _ = _write(folder, "ca", ca_key, ca_cert)
    issuer = "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"
    server = _write(folder, "server", *_issue("insi.sandbox", ca_key, issuer, san="127.0.0.1"))
    auto = _write(folder, "auto", *_issue("INSI-AUTO", ca_key, issuer), password=b"s3cret")
    other = _write(folder, "other", *_issue("RIS-OTHER", ca_key, issuer))
    return {
        "ca": ca_path,
        "server_cert": server[0],
        "server_key": server[1],
        "auto_cert": auto[0],
        "auto_key": auto[1],
        "other_cert": other[0],
        "other_key": other[1],
    }


@pytest.fixture
async def tls_sandbox(wsdl: Path, pki: dict[str, Path]) -> AsyncIterator[InsiSandbox]:
    async with InsiSandbox(
        port=0, wsdl=wsdl, tls=TlsFiles(pki["server_cert"], pki["server_key"], pki["ca"])
    ) as s:
        yield s
