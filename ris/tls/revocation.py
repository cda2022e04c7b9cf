"""Is a server's certificate chain revoked (RIS.MSS.06, and the same need on every outbound link)?

Python's `ssl` cannot ask an OCSP responder, and OpenSSL checks CRLs only when they were loaded before the
handshake: so the chain the handshake verified is checked here, before anything is sent on the
connection. Each certificate of the chain but its trust anchor is checked against its issuer with, in this
order, the first source that answers:

1. the site's `crl_file` (PEM CRLs it keeps current itself) when it holds a current CRL of that issuer;
2. OCSP, from the responders of the certificate's Authority Information Access; the answer must be signed
   by the issuer, or by a responder the issuer delegated (id-kp-OCSPSigning), and still current;
3. the CRLs of the certificate's distribution points, signed by the issuer and still current.

Answers are kept (`CACHE`, per process) until their nextUpdate, at most `TlsSettings.cache_minutes`, then
fetched again. A revoked certificate is refused in every mode; when no source answers, hard-fail refuses
(`RevocationUnknown`) and soft-fail lets the connection go, saying so in what it returns.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, SignatureAlgorithmOID

from ris.tls.settings import TlsSettings

SKEW = dt.timedelta(minutes=5)  # clock difference tolerated with a responder
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a national CA's CRL runs to a few MB


class TlsRefused(Exception):
    """The server of a link is not accepted: one line naming the link and why."""

    def __init__(self, link: str, reason: str) -> None:
        super().__init__(f"{link}: {reason}")
        self.link = link
        self.reason = reason


class CertificateRevoked(TlsRefused):
    """A certificate of the server's chain is revoked: permanent, until the server's certificate changes."""


class RevocationUnknown(TlsRefused):
    """No source said whether the server's certificate is revoked (hard-fail): may pass when a responder
    answers again."""


class _NoAnswer(Exception):
    """One source did not settle the question (unreachable, unusable or unsigned answer)."""


@dataclass(frozen=True)
class Status:
    revoked: bool
    source: str  # "OCSP <url>", "CRL <url>" or "crl_file <path>"
    expires: dt.datetime  # reused until then
    revoked_at: dt.datetime | None = None


class AnswerCache:
    """OCSP statuses per (issuer key, serial) and CRLs per address, each until its expiry; shared by the
    threads of the process (the IMAP reader runs in one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[tuple[bytes, int], Status] = {}
        self._crls: dict[str, tuple[dt.datetime, x509.CertificateRevocationList]] = {}

    def status(self, key: tuple[bytes, int], now: dt.datetime) -> Status | None:
        with self._lock:
            found = self._statuses.get(key)
            return found if found is not None and found.expires > now else None

    def keep_status(self, key: tuple[bytes, int], status: Status) -> None:
        with self._lock:
            self._statuses[key] = status

    def crl(self, url: str, now: dt.datetime) -> x509.CertificateRevocationList | None:
        with self._lock:
            found = self._crls.get(url)
            return found[1] if found is not None and found[0] > now else None

    def keep_crl(self, url: str, crl: x509.CertificateRevocationList, expires: dt.datetime) -> None:
        with self._lock:
            self._crls[url] = (expires, crl)

    def clear(self) -> None:
        with self._lock:
            self._statuses.clear()
            self._crls.clear()


CACHE = AnswerCache()


def _name(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    subject = cn[0].value if cn else cert.subject.rfc4514_string()
    return f"certificate {subject} (serial {cert.serial_number:x})"


def _key_id(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subject public key (RFC 5280 key identifier, the OCSP responder key hash)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _expiry(next_update: dt.datetime | None, now: dt.datetime, settings: TlsSettings) -> dt.datetime:
    longest = now + dt.timedelta(minutes=settings.cache_minutes)
    return min(next_update, longest) if next_update is not None else longest


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith("http")
    ]


@functools.cache
def _fetch_context() -> ssl.SSLContext:
    """For a revocation source on https (rare): the system CAs, loaded once (a context costs ~20 ms)."""
    return ssl.create_default_context()


def _fetch(url: str, settings: TlsSettings, request: bytes | None = None) -> bytes:
    """GET a CRL, or POST an OCSP request; the answer's size is bounded. Revocation sources are plain HTTP
    (their answers are signed): checking their own certificate would go round in circles."""
    method, headers = ("POST", {"Content-Type": "application/ocsp-request"}) if request else ("GET", {})
    client = httpx.Client(verify=_fetch_context(), timeout=settings.fetch_timeout_s, follow_redirects=True)
    try:
        with (
            client as http,
            http.stream(method, url, content=request, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _NoAnswer(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise _NoAnswer(f"answer larger than {MAX_ANSWER_BYTES // 2**20} MB")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise _NoAnswer(f"unreachable ({type(exc).__name__})") from exc


def _verify_signature(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None, pss: bool
) -> None:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            scheme = (
                padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
                if pss
                else padding.PKCS1v15()
            )
            key.verify(signature, data, scheme, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise _NoAnswer(f"signature by an unsupported key ({type(key).__name__})")
    except (InvalidSignature, UnsupportedAlgorithm) as exc:
        raise _NoAnswer("the answer's signature does not verify") from exc


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    """Who signed the OCSP answer: the issuer itself, or a responder certificate the issuer delegated."""

    def named(cert: x509.Certificate) -> bool:
        if response.responder_name is not None:
            return cert.subject == response.responder_name
        return response.responder_key_hash == _key_id(cert)

    if named(issuer):
        return issuer
    for delegate in response.certificates:
        if not named(delegate):
            continue
        try:
            delegate.verify_directly_issued_by(issuer)
            usage = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            raise _NoAnswer("the responder's certificate is not delegated by the issuer") from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
            raise _NoAnswer("the responder's certificate lacks id-kp-OCSPSigning")
        if not delegate.not_valid_before_utc - SKEW <= now <= delegate.not_valid_after_utc + SKEW:
            raise _NoAnswer("the responder's certificate is not valid now")
        return delegate
    raise _NoAnswer("the answer is signed neither by the issuer nor by a responder it delegated")


def _ocsp(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, settings: TlsSettings, now: dt.datetime
) -> Status:
    asked = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    body = _fetch(url, settings, asked.public_bytes(serialization.Encoding.DER))
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise _NoAnswer("not an OCSP response") from exc
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _NoAnswer(f"the responder answered {response.response_status.name}")
    signer = _signer(response, issuer, now)
    pss = response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    signed = response.tbs_response_bytes
    _verify_signature(signer.public_key(), response.signature, signed, response.signature_hash_algorithm, pss)
    single = next(
        (
            r
            for r in response.responses
            if r.serial_number == cert.serial_number
            and r.issuer_key_hash == asked.issuer_key_hash
            and r.issuer_name_hash == asked.issuer_name_hash
        ),
        None,
    )
    if single is None:
        raise _NoAnswer("the answer is about another certificate")
    if single.this_update_utc > now + SKEW:
        raise _NoAnswer("the answer is dated in the future")
    if single.next_update_utc is not None and single.next_update_utc < now - SKEW:
        raise _NoAnswer(f"the answer is stale (nextUpdate {single.next_update_utc:%Y-%m-%d %H:%M} UTC)")
    if single.certificate_status is ocsp.OCSPCertStatus.UNKNOWN:
        raise _NoAnswer("the responder does not know the certificate")
    revoked = single.certificate_status is ocsp.OCSPCertStatus.REVOKED
    return Status(
        revoked,
        f"OCSP {url}",
        _expiry(single.next_update_utc, now, settings),
        single.revocation_time_utc if revoked else None,
    )


def _from_crl(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    source: str,
    settings: TlsSettings,
    now: dt.datetime,
) -> Status:
    if crl.issuer != issuer.subject:
        raise _NoAnswer("a CRL of another issuer")
    if not crl.is_signature_valid(issuer.public_key()):
        raise _NoAnswer("the CRL's signature does not verify")
    if crl.last_update_utc > now + SKEW:
        raise _NoAnswer("the CRL is dated in the future")
    if crl.next_update_utc is not None and crl.next_update_utc < now - SKEW:
        raise _NoAnswer(f"the CRL is stale (nextUpdate {crl.next_update_utc:%Y-%m-%d %H:%M} UTC)")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    expires = _expiry(crl.next_update_utc, now, settings)
    return Status(entry is not None, source, expires, entry.revocation_date_utc if entry else None)


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(data)
    except ValueError:
        try:
            return x509.load_pem_x509_crl(data)
        except ValueError as exc:
            raise _NoAnswer("not a CRL") from exc


def _distributed(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    url: str,
    settings: TlsSettings,
    now: dt.datetime,
    cache: AnswerCache,
) -> Status:
    crl = cache.crl(url, now)
    if crl is None:
        crl = _load_crl(_fetch(url, settings))
        status = _from_crl(crl, cert, issuer, f"CRL {url}", settings, now)  # checked before it is kept
        cache.keep_crl(url, crl, status.expires)
        return status
    return _from_crl(crl, cert, issuer, f"CRL {url}", settings, now)


def site_crls(crl_file: str | None, link: str) -> list[x509.CertificateRevocationList]:
    """The CRLs of the site's `crl_file` (PEM, one or several); TlsRefused when it cannot be used, as a
    missing file would otherwise silently stop being checked."""
    if not crl_file:
        return []
    try:
        data = Path(crl_file).read_bytes()
    except OSError as exc:
        raise TlsRefused(link, f"crl_file {crl_file} cannot be read ({exc.strerror})") from exc
    marker = b"-----BEGIN X509 CRL-----"
    try:
        crls = [x509.load_pem_x509_crl(marker + block) for block in data.split(marker)[1:]]
    except ValueError as exc:
        raise TlsRefused(link, f"crl_file {crl_file}: not a PEM CRL") from exc
    if not crls:
        raise TlsRefused(link, f"crl_file {crl_file}: holds no PEM CRL")
    return crls


def status_of(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    settings: TlsSettings,
    local: Sequence[x509.CertificateRevocationList] = (),
    local_source: str = "crl_file",
    now: dt.datetime | None = None,
    cache: AnswerCache = CACHE,
) -> Status:
    """The revocation status of `cert` from the first source that answers; _NoAnswer naming what each
    source said when none does."""
    now = now or dt.datetime.now(dt.UTC)
    said: list[str] = []
    for crl in local:
        if crl.issuer == issuer.subject:
            try:
                return _from_crl(crl, cert, issuer, local_source, settings, now)
            except _NoAnswer as exc:
                said.append(f"{local_source}: {exc}")
    key = (_key_id(issuer), cert.serial_number)
    if (known := cache.status(key, now)) is not None:
        return known
    for url in _ocsp_urls(cert):
        try:
            status = _ocsp(cert, issuer, url, settings, now)
        except _NoAnswer as exc:
            said.append(f"OCSP {url}: {exc}")
            continue
        cache.keep_status(key, status)
        return status
    for url in _crl_urls(cert):
        try:
            return _distributed(cert, issuer, url, settings, now, cache)
        except _NoAnswer as exc:
            said.append(f"CRL {url}: {exc}")
    raise _NoAnswer("; ".join(said) or "it names no OCSP responder and no CRL distribution point")


def check_chain(
    chain: Sequence[x509.Certificate],
    *,
    link: str,
    settings: TlsSettings,
    crl_file: str | None = None,
    now: dt.datetime | None = None,
    cache: AnswerCache = CACHE,
) -> list[str]:
    """Check each certificate of a verified chain (leaf first) but its trust anchor; returns one line per
    certificate saying what answered (for the connection log). Raises CertificateRevoked, or
    RevocationUnknown under hard-fail when no source answers."""
    now = now or dt.datetime.now(dt.UTC)
    local = site_crls(crl_file, link)
    if len(chain) < 2:
        return ["the server's certificate is itself a trust anchor of the link: nothing to check"]
    notes = []
    for cert, issuer in itertools.pairwise(chain):
        try:
            status = status_of(
                cert,
                issuer,
                settings=settings,
                local=local,
                local_source=f"crl_file {crl_file}",
                now=now,
                cache=cache,
            )
        except _NoAnswer as exc:
            if settings.revocation == "hard-fail":
                raise RevocationUnknown(
                    link, f"revocation of the server's {_name(cert)} unknown (hard-fail): {exc}"[:400]
                ) from exc
            notes.append(f"{_name(cert)}: revocation unknown, accepted (soft-fail): {exc}"[:400])
            continue
        if status.revoked:
            since = f" on {status.revoked_at:%Y-%m-%d %H:%M} UTC" if status.revoked_at else ""
            raise CertificateRevoked(link, f"the server's {_name(cert)} is revoked{since} ({status.source})")
        notes.append(f"{_name(cert)} not revoked ({status.source})")
    return notes
