"""One TLS policy on every outbound link, over real sockets: each client refuses a peer whose certificate
its sandbox CA revoked (OCSP on loopback), in one line naming the link, before it sends anything; each
works again once the peer presents a new certificate. On the MSSanté links (SMTP and IMAP) the peer itself
records the protocol and suite negotiated: TLS 1.2 and one of the four suites of RIS.MSS.03."""

from __future__ import annotations

import datetime as dt
import re
import ssl
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509

from ris.auth import tokens
from ris.auth.settings import PscSettings
from ris.channels import mail
from ris.channels.mail import MailRefused, SmtpConfig
from ris.channels.mssante import receipts
from ris.channels.mssante.smtp import submit
from ris.identity.insi_client import InsiClient, InsiUnavailable, TraitsQuery
from ris.tls import MSSANTE_CIPHERS, CertificateRevoked
from ris.tls.revocation import CACHE
from sandbox.dmp import DmpSandbox
from sandbox.insi import InsiSandbox, TlsFiles
from sandbox.mssante import MssSandbox
from sandbox.pki import Authority, write_cert, write_key
from sandbox.smtp import SmtpSandbox
from tests import factories
from tests.auth.provider import CLIENT_ID, OpenIdProvider
from tests.dmp.conftest import config_for, direct_settings, dmp_rows, with_documents
from tests.dmp.test_exchange import send as send_dmp
from tests.identity.conftest import settings_for
from tests.mssante.conftest import operator_config

SENDER = "cr-imagerie@imagerie-demo.mssante.fr"
TO = "helene.francois@test-ci-sis.mssante.fr"
SUITES = MSSANTE_CIPHERS.split(":")


def _forget_answers() -> None:
    """What happens once the "good" answer each client kept expires (at most TlsSettings.cache_minutes)."""
    CACHE.clear()


def _mail(key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, TO, "XDM/1.0/DDM+TEST"
    message["Message-ID"] = f"<{key}@imagerie-demo.mssante.fr>"
    message.set_content("Bonjour\n")
    return message


async def test_mssante_smtp_refuses_a_revoked_operator_then_takes_its_new_certificate(tmp_path: Path):
    with MssSandbox(folder=tmp_path / "mss", tls_dir=tmp_path / "tls") as operator:
        config = operator_config(operator)
        link = f"MSSanté SMTP localhost:{operator.port}"
        await submit(_mail("k1"), config, sender=SENDER, recipient=TO, envid="k1")
        [first] = operator.envelopes
        assert operator.received[0].tls_version == "TLSv1.2" and first.tls_cipher in SUITES  # RIS.MSS.02-03

        serial = operator.revoke_server_certificate()
        _forget_answers()
        with pytest.raises(MailRefused) as refused:
            await submit(_mail("k2"), config, sender=SENDER, recipient=TO, envid="k2")
        assert re.match(
            f"^{link}: the server's certificate localhost \\(serial [0-9a-f]+\\) is revoked",
            str(refused.value),
        )
        assert len(operator.received) == 1  # the envelope never left

        operator.replace_server_certificate()
        await submit(_mail("k2"), config, sender=SENDER, recipient=TO, envid="k2")
        assert len(operator.accepted()) == 2 and serial != operator.mss_pki.server_serial()


def test_mssante_imap_refuses_a_revoked_mailbox_before_the_login(tmp_path: Path):
    with MssSandbox(folder=tmp_path / "mss", tls_dir=tmp_path / "tls", imap_user=SENDER) as operator:
        box = operator.mailbox
        config = receipts.ImapConfig(
            host="localhost",
            port=box.port,
            user=SENDER,
            password=operator.imap_password,
            ca_bundle=str(operator.mss_pki.ca),
            timeout_s=10,
        )
        assert receipts.collect(config, lambda _data: True) == {"unseen": 0, "receipts": 0}
        [login] = box.logins()
        assert "TLSv1.2 with cipher" in login and any(f"cipher {suite} " in login for suite in SUITES)

        operator.revoke_server_certificate()
        _forget_answers()
        with pytest.raises(
            CertificateRevoked, match=f"^MSSanté IMAP localhost:{box.port}: the server's certificate"
        ):
            receipts.collect(config, lambda _data: True)
        assert len(box.logins()) == 1  # the credentials never left

        operator.replace_server_certificate()
        assert receipts.collect(config, lambda _data: True)["unseen"] == 0
        assert len(box.logins()) == 2


async def test_the_dmp_link_refuses_a_revoked_dmp_then_feeds_it(session, tmp_path: Path):
    with DmpSandbox(folder=tmp_path / "dmp", tls_dir=tmp_path / "dmp-tls") as dmp:
        settings = direct_settings()
        bundle = factories.validated_report(session, copies=0)
        with_documents(session, bundle, settings)
        [row] = dmp_rows(session, bundle, settings)
        dmp.revoke_server_certificate()
        reason = await send_dmp(session, dmp, row.id, settings)
        host = config_for(dmp).repository_url.split("/")[2]
        assert re.match(
            f"^DMP {host}: the server's certificate localhost \\(serial [0-9a-f]+\\) is revoked", reason
        )
        assert dmp.received == []
        dmp.replace_server_certificate()
        assert await send_dmp(session, dmp, row.id, settings) == "acknowledged"


async def test_the_mail_relay_refuses_a_revoked_relay(tmp_path: Path):
    async with SmtpSandbox(folder=tmp_path / "relay", security="starttls") as relay:
        config = SmtpConfig(
            host="localhost", port=relay.port, ca_bundle=str(relay.ca_pem), from_address=SENDER, timeout_s=10
        )
        await mail.send(_mail("r1"), config)
        relay.pki.revoke_server()
        _forget_answers()
        with pytest.raises(
            MailRefused, match=f"^mail relay localhost:{relay.port}: the server's certificate"
        ):
            await mail.send(_mail("r2"), config)
        assert len(relay.received) == 1


@pytest.fixture
def insi_tls(tmp_path: Path) -> tuple[Authority, TlsFiles, Path, Path]:
    authority = Authority.create("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "IGC-SANTE TEST")
    files = {}
    for name, (cert, key) in {
        "server": authority.server(("127.0.0.1",)),
        "client": authority.client("INSI-AUTO"),
    }.items():
        files[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
        write_cert(files[name][0], cert)
        write_key(files[name][1], key)
    write_cert(tmp_path / "ca.pem", authority.cert)
    return authority, TlsFiles(*files["server"], tmp_path / "ca.pem"), *files["client"]


async def test_the_insi_link_refuses_a_revoked_teleservice(insi_tls, shared: Path):
    authority, tls, cert, key = insi_tls
    wsdl = shared / "reference/insi/wsdl/DESIR_ICIR_EXP_1.5.0.wsdl"
    query = TraitsQuery("ADRTROIS", ("DOMINIQUE",), "F", dt.date(1997, 2, 26))
    async with InsiSandbox(port=0, wsdl=wsdl, tls=tls) as insi:
        settings = settings_for(insi.url, wsdl, cert_path=cert, key_path=key, ca_path=tls.ca)
        async with InsiClient(settings) as client:
            assert (await client.search_traits(query)).error is None
        authority.revoke(x509_serial(tls.cert))
        _forget_answers()
        async with InsiClient(settings) as client:
            call = await client.search_traits(query)
        assert isinstance(call.error, InsiUnavailable)
        assert re.match(
            f"^INSi 127.0.0.1:{insi.port}: the server's certificate 127.0.0.1 .* is revoked", str(call.error)
        )
        assert len(insi.received) == 1


def x509_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_the_pro_sante_connect_link_refuses_a_revoked_provider(tmp_path: Path):
    authority = Authority.create("TEST AC PSC", "PSC TEST")
    cert, key = authority.server(("localhost",))
    write_cert(tmp_path / "psc.pem", cert)
    write_key(tmp_path / "psc.key", key)
    write_cert(tmp_path / "ca.pem", authority.cert)
    provider = OpenIdProvider()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "psc.pem", tmp_path / "psc.key")
    provider.server.socket = context.wrap_socket(provider.server.socket, server_side=True)
    host = f"localhost:{provider.server.server_address[1]}"
    provider.state.issuer = f"https://{host}"
    settings = PscSettings(
        issuer=provider.issuer, client_id=CLIENT_ID, client_secret=None, ca_bundle=str(tmp_path / "ca.pem")
    )
    with provider:
        assert tokens.discover(settings)["issuer"] == provider.issuer
        authority.revoke(cert.serial_number)
        _forget_answers()
        with pytest.raises(
            tokens.ProviderUnreachable, match=f"^Pro Santé Connect {host}: the server's certificate localhost"
        ):
            tokens.discover(settings)
