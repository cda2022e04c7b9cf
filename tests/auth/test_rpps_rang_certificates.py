"""The pool of RPPS-Rang certificates (RIS.AUTH.01–02, RIS.MSS.24): the validating radiologist's certificate
is the one chosen for MSSanté and INSi; a missing, expired or unusable one is refused with one clear line
before anything is sent."""

from __future__ import annotations

import dataclasses
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks.certificates import RppsRangCertificates
from ris.auth.certificates import (
    CertificateUnavailable,
    RppsRangCertificate,
    for_insi,
    for_mssante,
    select_certificate,
)
from ris.channels import mail
from ris.channels.mail import SmtpConfig
from ris.identity.insi_client import InsiSettings, bundled_wsdl
from sandbox.smtp.server import SmtpSandbox, _Handler
from tests.auth.pki import NOW, OrgAuthority, certificate, org_authority

LEFEVRE, NGUYEN = "10001234567", "10001234568"


@pytest.fixture
def ca(tmp_path) -> OrgAuthority:
    return org_authority(tmp_path)


@pytest.fixture
def pool(ca, tmp_path) -> list[RppsRangCertificate]:
    lefevre = certificate(ca, tmp_path, "lefevre", passphrase="s3cret")
    nguyen_old = certificate(ca, tmp_path, "nguyen-old", days=(-400, -1))
    nguyen = certificate(ca, tmp_path, "nguyen", days=(-10, 700))
    return [
        RppsRangCertificate(LEFEVRE, None, *lefevre, passphrase="s3cret"),
        RppsRangCertificate(NGUYEN, "1", *nguyen_old),
        RppsRangCertificate(NGUYEN, "2", *nguyen),
    ]


def test_the_validating_radiologists_certificate_goes_with_mssante_and_insi(pool):
    chosen = select_certificate(pool, LEFEVRE, now=NOW)
    assert chosen.cert_path.name == "lefevre.pem"
    smtp = for_mssante(SmtpConfig(host="operator.example", port=587, from_address="a@b.mssante.fr"), chosen)
    assert (smtp.client_cert, smtp.client_key, smtp.key_passphrase) == (
        str(chosen.cert_path),
        str(chosen.key_path),
        "s3cret",
    )
    insi = for_insi(InsiSettings("https://insi.example", bundled_wsdl(), "IDAM", "RIS", "1", "uuid"), chosen)
    assert (insi.cert_path, insi.key_path, insi.key_password) == (chosen.cert_path, chosen.key_path, "s3cret")
    # Several activities: the valid certificate is chosen over the expired one.
    assert select_certificate(pool, NGUYEN, now=NOW).rang == "2"


def test_a_missing_expired_or_unusable_certificate_is_refused_before_sending(pool, tmp_path):
    with pytest.raises(CertificateUnavailable, match=r"^no RPPS-Rang certificate .*\(RPPS 10009876541\)"):
        select_certificate(pool, "10009876541", now=NOW)
    with pytest.raises(CertificateUnavailable, match=r"^RPPS-Rang 10001234568-1: the certificate expired on"):
        select_certificate(pool, NGUYEN, rang="1", now=NOW)
    wrong = dataclasses.replace(pool[0], passphrase="nope")
    with pytest.raises(CertificateUnavailable, match="the passphrase does not open the key"):
        select_certificate([wrong], LEFEVRE, now=NOW)
    mixed = dataclasses.replace(pool[2], key_path=pool[1].key_path)
    with pytest.raises(CertificateUnavailable, match="the key does not belong to the certificate"):
        select_certificate([mixed], NGUYEN, now=NOW)
    absent = dataclasses.replace(pool[2], cert_path=tmp_path / "absent.pem")
    with pytest.raises(CertificateUnavailable, match="is not a readable PEM certificate"):
        select_certificate([absent], NGUYEN, now=NOW)


def test_the_block_keeps_passphrases_secret_and_gives_the_pool(pool):
    block = RppsRangCertificates(
        certificates=[
            {
                "rpps": c.rpps,
                "rang": c.rang,
                "cert_path": c.cert_path,
                "key_path": c.key_path,
                "passphrase": c.passphrase,
            }
            for c in pool
        ]
    )
    assert "s3cret" not in repr(block)
    assert block.pool() == pool


class TestRppsRangCertificatesBlock(BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return RppsRangCertificates

    def test_has_a_valid_image(self, block) -> None:
        assert block._logo_url is None  # the engine's blocks carry no logo, on purpose


class _PeerRecordingHandler(_Handler):
    async def handle_DATA(self, server, session, envelope) -> str:
        peer = server.transport.get_extra_info("ssl_object").getpeercert()
        self.owner.peers.append(dict(item[0] for item in peer["subject"])["commonName"])
        return await super().handle_DATA(server, session, envelope)


class CertificateCheckingOperator(SmtpSandbox):
    """An MSSanté operator that accepts a connection only with a client certificate of the test authority,
    and notes whose it was."""

    handler_class = _PeerRecordingHandler

    def __init__(self, authority: Path) -> None:
        super().__init__(security="tls")
        self.authority = authority
        self.peers: list[str] = []

    def _tls_context(self) -> ssl.SSLContext | None:
        context = super()._tls_context()
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(self.authority))
        return context


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "lefevre@imagerie-demo.mssante.fr", to, "CR"
    message["Message-ID"] = make_msgid()
    message.set_content("compte rendu")
    return message


async def test_the_mail_leaves_with_the_validating_radiologists_certificate(ca, pool):
    """RIS.MSS.24 step 3: the operator sees, in the TLS handshake, the certificate of the radiologist who
    validated the report; another radiologist's report goes with theirs."""
    async with CertificateCheckingOperator(ca.pem) as operator:
        base = SmtpConfig(
            host="127.0.0.1",
            port=operator.port,
            security="tls",
            ca_bundle=str(operator.ca_pem),
            from_address="lefevre@imagerie-demo.mssante.fr",
        )
        for validator in (LEFEVRE, NGUYEN):
            config = for_mssante(base, select_certificate(pool, validator))
            await mail.send(_message("dest@medecin-demo.mssante.fr"), config)
        assert operator.peers == ["lefevre", "nguyen"]
        with pytest.raises(CertificateUnavailable):
            for_mssante(base, select_certificate(pool, "10009876541"))
        assert len(operator.received) == 2  # nothing left without a certificate
