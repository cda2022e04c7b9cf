"""Fixtures of the identity tests: the INSi sandbox on loopback, a client for it, test certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ris.identity.insi_client import InsiClient, InsiSettings
from sandbox.insi import InsiSandbox, TlsFiles
from sandbox.pki import Authority, write_cert, write_key


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


def _write(folder: Path, name: str, cert, key, password: bytes | None = None) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    write_cert(cert_path, cert)
    write_key(key_path, key, password)
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA (stand-in for TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS) publishing its revocation
    (OCSP, CRL: sandbox.pki), a server certificate for 127.0.0.1 and client certificates with CN INSI-AUTO
    (password-protected key) and a wrong CN."""
    folder = tmp_path_factory.mktemp("pki")
    authority = Authority.create("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "IGC-SANTE TEST")
    ca_path = folder / "ca.pem"
    write_cert(ca_path, authority.cert)
    server = _write(folder, "server", *authority.server(("insi.sandbox", "127.0.0.1")))
    auto = _write(folder, "auto", *authority.client("INSI-AUTO"), password=b"s3cret")
    other = _write(folder, "other", *authority.client("RIS-OTHER"))
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
