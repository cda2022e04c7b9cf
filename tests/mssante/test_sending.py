"""Submitting to the sandbox operator over real TLS on loopback: mutual TLS, TLS 1.2, DSN parameters,
retries with the same Message-ID, 5xx failures with their code, untrusted servers and missing client
certificates refused."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from ris.channels.mail import MailRefused, MailTransient
from ris.channels.mssante.smtp import submit
from sandbox.mssante import MssSandbox
from tests.mssante.conftest import operator_config

SENDER = "cr-imagerie@imagerie-demo.mssante.fr"
TO = "helene.francois@test-ci-sis.mssante.fr"


def _mail(key: str = "k1") -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = TO
    message["Subject"] = "XDM/1.0/DDM+TEST"
    message["Message-ID"] = f"<{key}@imagerie-demo.mssante.fr>"
    message["Date"] = "Sat, 28 Nov 2026 10:00:00 +0000"
    message.set_content("Bonjour\n")
    return message


async def _send(server: MssSandbox, key: str = "k1", **overrides) -> tuple[str, bool]:
    return await submit(
        _mail(key), operator_config(server, **overrides), sender=SENDER, recipient=TO, envid=key
    )


async def test_mutual_tls_12_with_dsn_parameters_and_eml_stored(operator: MssSandbox) -> None:
    response, dsn = await _send(operator)
    assert dsn and response.startswith("2.0.0 OK")
    [received] = operator.received
    assert received.tls_version == "TLSv1.2"  # RIS.MSS.02: never 1.3 even though both ends could
    assert received.path is not None and received.path.parent.name == "mss-received"
    assert received.path.read_bytes() == received.data
    [envelope] = operator.envelopes
    assert "RET=HDRS" in envelope.mail_options and "ENVID=K1" in envelope.mail_options  # upper-cased
    assert envelope.rcpt_options == ("NOTIFY=SUCCESS,FAILURE", f"ORCPT=RFC822;{TO.upper()}")
    assert envelope.client_subject and "BAL APPLICATIVE SANDBOX" in envelope.client_subject


async def test_same_message_id_twice_is_flagged_and_stored_once(operator: MssSandbox) -> None:
    await _send(operator)
    await _send(operator)
    assert [r.duplicate for r in operator.received] == [False, True]
    assert len(list(operator.folder.glob("*.eml"))) == 1


async def test_4xx_is_transient_then_the_same_message_goes_through(operator: MssSandbox) -> None:
    operator.transient_failures = 1
    with pytest.raises(MailTransient, match="SMTP 451"):
        await _send(operator)
    await _send(operator)
    assert len(operator.accepted()) == 1


async def test_disconnect_is_transient(operator: MssSandbox) -> None:
    operator.disconnects = 1
    with pytest.raises(MailTransient):
        await _send(operator)
    assert operator.received == []


async def test_5xx_is_refused_with_its_code(operator: MssSandbox) -> None:
    operator.data_reply = "550 5.7.1 Message refused by policy"
    with pytest.raises(MailRefused) as refused:
        await _send(operator)
    assert refused.value.code == 550 and "5.7.1 Message refused by policy" in refused.value.reason


async def test_without_client_certificate_the_operator_refuses(operator: MssSandbox) -> None:
    # The operator cuts the TLS handshake; on the wire that is a reset, so it counts as transient and
    # ends failed after the retries (the delivery keeps the reason).
    with pytest.raises(MailTransient, match="upgrading transport"):
        await _send(operator, client_cert=None, client_key=None, key_passphrase=None)
    assert operator.received == []


async def test_server_from_another_ca_is_refused(operator: MssSandbox, tmp_path: Path) -> None:
    with MssSandbox(tls_dir=tmp_path / "other") as other:
        with pytest.raises(MailRefused, match="not trusted"):
            # Trusting only our operator's CA, the other server's certificate cannot be verified.
            await submit(
                _mail(),
                operator_config(operator, port=other.port),
                sender=SENDER,
                recipient=TO,
                envid="k1",
            )
        assert other.received == []


async def test_expired_server_certificate_is_refused(tmp_path: Path) -> None:
    with MssSandbox(tls_dir=tmp_path / "expired", expired_server_cert=True) as expired:
        with pytest.raises(MailRefused, match="expired"):
            await _send(expired)
        assert expired.received == []


def test_plain_or_unknown_security_is_refused_before_connecting() -> None:
    from ris.channels.mail import MailConfigError
    from ris.channels.mssante.smtp import OperatorConfig

    with pytest.raises(MailConfigError, match=r"RIS\.MSS\.01"):
        OperatorConfig(host="localhost", port=25, security="none")


async def test_revoked_server_certificate_is_refused_when_crls_are_checked(tmp_path: Path) -> None:
    with MssSandbox(tls_dir=tmp_path / "revoked", revoked_server_cert=True) as revoked:
        with pytest.raises(MailRefused, match="revoked"):
            await _send(revoked, crl_file=str(revoked.mss_pki.crl))
        assert revoked.received == []


async def test_a_current_crl_without_the_server_lets_the_mail_go(operator: MssSandbox) -> None:
    await _send(operator, crl_file=str(operator.mss_pki.crl))
    assert len(operator.accepted()) == 1
