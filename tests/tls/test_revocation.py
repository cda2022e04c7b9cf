"""`ris.tls`: a server's chain checked for revocation against the sandbox CA's real OCSP responder and CRL
(HTTP on loopback): OCSP first, the CRL of the distribution point when the responder is away, the site's
own crl_file before both; answers cached until they expire, then fetched again; hard-fail refuses what no
source answers, soft-fail lets it through saying so; an answer its issuer did not sign is not believed;
the chain read from a real handshake; the MSSanté contexts pinned to TLS 1.2 and the four suites."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ris.tls import MSSANTE_CIPHERS, CertificateRevoked, RevocationUnknown, TlsPolicy, TlsRefused, TlsSettings
from ris.tls.revocation import CACHE, AnswerCache, check_chain
from sandbox.mssante import MssSandbox
from sandbox.pki import Authority, new_key, valid_for

HARD, SOFT = TlsSettings(), TlsSettings(revocation="soft-fail")
LINK = "MSSanté SMTP operator.example:587"


@pytest.fixture
def ca() -> Authority:
    return Authority.create("TEST AC REVOCATION", "TLS TEST", kind="rsa")


def _leaf(ca: Authority) -> x509.Certificate:
    return ca.server(("localhost",))[0]


def _check(ca: Authority, cert: x509.Certificate, settings: TlsSettings = HARD, **kw) -> list[str]:
    cache = kw.pop("cache", AnswerCache())
    return check_chain([cert, ca.cert], link=LINK, settings=settings, cache=cache, **kw)


def test_a_good_certificate_is_answered_by_ocsp_then_kept_until_the_answer_expires(ca):
    cert, cache, now = _leaf(ca), AnswerCache(), dt.datetime.now(dt.UTC)
    [note] = _check(ca, cert, cache=cache, now=now)
    assert note.startswith("certificate localhost (serial ") and f"not revoked (OCSP {ca.ocsp_url})" in note
    assert ca.revocations.ocsp_requests == 1
    _check(ca, cert, cache=cache, now=now + dt.timedelta(minutes=30))
    assert ca.revocations.ocsp_requests == 1  # answered from the cache
    _check(ca, cert, cache=cache, now=now + dt.timedelta(minutes=61))  # past cache_minutes: asked again
    assert ca.revocations.ocsp_requests == 2 and ca.revocations.crl_requests == 0


def test_a_revoked_certificate_is_refused_in_one_line_naming_the_link_in_both_modes(ca):
    cert = _leaf(ca)
    ca.revoke(cert.serial_number)
    for settings in (HARD, SOFT):
        with pytest.raises(CertificateRevoked) as refused:
            _check(ca, cert, settings)
        line = str(refused.value)
        named = f"the server's certificate localhost (serial {cert.serial_number:x}) is revoked"
        assert line.startswith(f"{LINK}: {named}")
        assert f"(OCSP {ca.ocsp_url})" in line and "\n" not in line


def test_without_a_responder_the_crl_of_the_distribution_point_answers(ca):
    good, bad = _leaf(ca), _leaf(ca)
    ca.revoke(bad.serial_number)
    ca.revocations.ocsp_answers = False
    cache = AnswerCache()
    assert f"not revoked (CRL {ca.crl_url})" in _check(ca, good, cache=cache)[0]
    with pytest.raises(CertificateRevoked, match=f"is revoked on .* UTC \\(CRL {ca.crl_url}\\)"):
        _check(ca, bad, cache=cache)
    assert ca.revocations.crl_requests == 1  # the CRL downloaded once, kept for the second certificate


def test_when_no_source_answers_hard_fail_refuses_and_soft_fail_lets_it_through(ca):
    cert = _leaf(ca)
    ca.revocations.ocsp_answers = ca.revocations.crl_served = False
    with pytest.raises(RevocationUnknown) as unknown:
        _check(ca, cert)
    line = str(unknown.value)
    assert line.startswith(f"{LINK}: revocation of the server's certificate localhost")
    assert "(hard-fail)" in line
    assert f"OCSP {ca.ocsp_url}: HTTP 503" in line and f"CRL {ca.crl_url}: HTTP 503" in line
    [note] = _check(ca, cert, SOFT)
    assert "revocation unknown, accepted (soft-fail)" in note


def test_the_sites_crl_file_is_read_before_any_responder(ca, tmp_path: Path):
    cert = _leaf(ca)
    ca.revoke(cert.serial_number)
    crl_file = tmp_path / "crls.pem"
    crl_file.write_bytes(ca.crl())
    with pytest.raises(CertificateRevoked, match=f"\\(crl_file {crl_file}\\)"):
        _check(ca, cert, crl_file=str(crl_file))
    assert ca.revocations.ocsp_requests == ca.revocations.crl_requests == 0
    # A CRL past its nextUpdate settles nothing: the responder is asked.
    now = dt.datetime.now(dt.UTC)
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(days=9))
        .next_update(now - dt.timedelta(days=2))
        .sign(ca.key, hashes.SHA256())
    )
    other = _leaf(ca)
    crl_file.write_bytes(stale.public_bytes(serialization.Encoding.PEM))
    assert f"not revoked (OCSP {ca.ocsp_url})" in _check(ca, other, crl_file=str(crl_file))[0]
    with pytest.raises(TlsRefused, match=f"^{LINK}: crl_file {tmp_path / 'missing.pem'} cannot be read"):
        _check(ca, other, crl_file=str(tmp_path / "missing.pem"))


def test_an_answer_the_issuer_did_not_sign_is_not_believed(ca):
    """A certificate whose AIA points at another CA's responder: that responder answers, signed with its
    own key; the answer is not the issuer's, so nothing is known (and there is no CRL to fall back on)."""
    stranger = Authority.create("TEST AC ETRANGERE", "TLS TEST", kind="rsa")
    key = new_key("rsa")
    start, end = valid_for(30)
    misdirected = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(stranger.ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    with pytest.raises(RevocationUnknown, match="signed neither by the issuer nor by a responder it"):
        _check(ca, misdirected)
    assert stranger.revocations.ocsp_requests == 1


def _handshake(server: MssSandbox, policy: TlsPolicy) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return policy.context().wrap_socket(raw, server_hostname="localhost")


def test_the_chain_of_a_real_handshake_is_checked_before_anything_is_sent(tmp_path: Path):
    with MssSandbox(folder=tmp_path / "mss", tls_dir=tmp_path / "tls", security="tls") as server:
        pki = server.mss_pki
        policy = TlsPolicy(
            "MSSanté SMTP localhost",
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
            key_passphrase="sandbox-org-key",
            mssante=True,
        )
        with _handshake(server, policy) as tls:
            shaken = policy.check(tls)
        assert shaken.version == "TLSv1.2" and shaken.cipher in MSSANTE_CIPHERS.split(":")
        serial = pki.server_serial()
        assert shaken.revocation == (
            f"certificate localhost (serial {serial:x}) not revoked (OCSP {pki.authority.ocsp_url})",
        )
        server.revoke_server_certificate()
        CACHE.clear()  # as when the kept "good" answer expires (at most cache_minutes)
        with _handshake(server, policy) as tls, pytest.raises(CertificateRevoked, match=f"serial {serial:x}"):
            policy.check(tls)
        server.replace_server_certificate()  # a new certificate, a new serial: accepted
        with _handshake(server, policy) as tls:
            assert "not revoked" in policy.check(tls).revocation[0]
        assert server.received == []


def test_mssante_links_pin_tls_12_and_the_four_suites_others_accept_tls_13():
    mss = TlsPolicy("MSSanté IMAP", mssante=True).context()
    assert mss.minimum_version == mss.maximum_version == ssl.TLSVersion.TLSv1_2
    suites = {c["name"] for c in mss.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert suites == set(MSSANTE_CIPHERS.split(":"))
    other = TlsPolicy("DMP").context()
    assert other.minimum_version == ssl.TLSVersion.TLSv1_2
    assert other.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert other.verify_mode == ssl.CERT_REQUIRED and other.check_hostname
