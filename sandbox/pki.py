"""Throw-away certificate authorities for the sandbox peers: a test CA issues server certificates for the
loopback names and client certificates for the engine, written as PEM files, so that each side verifies
the other as it would in production. EC keys by default; RSA where a peer's cipher suites require it (the
MSSanté suites are ECDHE-RSA).

Each CA publishes the revocation of what it issued, as the IGC Santé does: its certificates carry an
Authority Information Access (an OCSP responder) and a CRL distribution point, both on one small HTTP
server on loopback per process (`Publisher`, started with the first CA) that answers OCSP requests
(`POST /ocsp/<ca>`) and serves a CRL signed at each request (`GET /crl/<ca>.crl`). `Authority.revoke`
revokes a certificate for real; switches make a CA's responder or CRL unreachable, and count requests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

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


@dataclass
class Revocations:
    """What a CA revoked and how its publication behaves (switches and counters for the tests)."""

    issued: set[int] = field(default_factory=set)
    revoked: dict[int, dt.datetime] = field(default_factory=dict)
    ocsp_answers: bool = True  # False: the responder answers HTTP 503
    crl_served: bool = True  # False: the CRL address answers HTTP 503
    ocsp_requests: int = 0
    crl_requests: int = 0


@dataclass(frozen=True)
class Authority:
    """A self-signed test CA that issues leaf certificates under names of one organisation, and publishes
    their revocation (OCSP and CRL) through the process's `Publisher`."""

    organisation: str
    country: str | None
    kind: KeyKind
    key: PrivateKey
    cert: x509.Certificate
    ident: str = field(default_factory=lambda: secrets.token_hex(8))
    revocations: Revocations = field(default_factory=Revocations)

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
        authority = cls(organisation, country, kind, key, cert)
        Publisher.shared().publish(authority)
        return authority

    @property
    def ocsp_url(self) -> str:
        return f"{Publisher.shared().url}/ocsp/{self.ident}"

    @property
    def crl_url(self) -> str:
        return f"{Publisher.shared().url}/crl/{self.ident}.crl"

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
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.ocsp_url)
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)], None, None, None)]
                ),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        self.revocations.issued.add(cert.serial_number)
        return cert, key

    def server(
        self, hosts: tuple[str, ...], *, validity: Validity | None = None
    ) -> tuple[x509.Certificate, PrivateKey]:
        return self.issue(hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, validity=validity, hosts=hosts)

    def client(self, common_name: str) -> tuple[x509.Certificate, PrivateKey]:
        return self.issue(common_name, ExtendedKeyUsageOID.CLIENT_AUTH)

    def revoke(self, serial: int) -> None:
        """From now on its OCSP answer and the CRL say the certificate is revoked."""
        self.revocations.revoked.setdefault(serial, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))

    def crl(self, revoked: tuple[int, ...] = ()) -> bytes:
        """The CA's revocation list (PEM): what it revoked, and the certificates of these serial numbers."""
        return self.revocation_list(revoked).public_bytes(serialization.Encoding.PEM)

    def revocation_list(self, revoked: tuple[int, ...] = ()) -> x509.CertificateRevocationList:
        """The CRL as published now (signed at each request, valid a week)."""
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=7))
        )
        listed = {**dict.fromkeys(revoked, now - dt.timedelta(minutes=1)), **self.revocations.revoked}
        for serial, when in listed.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def ocsp_answer(self, request_der: bytes) -> bytes:
        """The signed OCSP answer to one request: good, revoked, or unknown for what it never issued."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            refusal = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
            return refusal.public_bytes(serialization.Encoding.DER)
        now = dt.datetime.now(dt.UTC)
        serial = request.serial_number
        revoked_at = self.revocations.revoked.get(serial)
        if revoked_at is not None:
            status = ocsp.OCSPCertStatus.REVOKED
        elif serial in self.revocations.issued:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        answer = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=serial,
                algorithm=request.hash_algorithm,
                cert_status=status,
                this_update=now - dt.timedelta(minutes=1),
                next_update=now + dt.timedelta(hours=1),
                revocation_time=revoked_at,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
        )
        return answer.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class Publisher:
    """The revocation service of every sandbox CA of this process: one HTTP server on loopback, in a daemon
    thread, started with the first CA and living as long as the process."""

    _shared: ClassVar[Publisher | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._authorities: dict[str, Authority] = {}
        publisher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ident = self.path.removeprefix("/crl/").removesuffix(".crl")
                authority = publisher._authorities.get(ident)
                if authority is None or not self.path.startswith("/crl/"):
                    self._answer(404, b"", "text/plain")
                    return
                authority.revocations.crl_requests += 1
                if not authority.revocations.crl_served:
                    self._answer(503, b"", "text/plain")
                    return
                crl = authority.revocation_list().public_bytes(serialization.Encoding.DER)
                self._answer(200, crl, "application/pkix-crl")

            def do_POST(self) -> None:
                authority = publisher._authorities.get(self.path.removeprefix("/ocsp/"))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if authority is None or not self.path.startswith("/ocsp/"):
                    self._answer(404, b"", "text/plain")
                    return
                authority.revocations.ocsp_requests += 1
                if not authority.revocations.ocsp_answers:
                    self._answer(503, b"", "text/plain")
                    return
                self._answer(200, authority.ocsp_answer(body), "application/ocsp-response")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True, name="sandbox-pki-publisher").start()

    @classmethod
    def shared(cls) -> Publisher:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def publish(self, authority: Authority) -> None:
        self._authorities[authority.ident] = authority


def _name(common_name: str, organisation: str, country: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []
    attributes += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    return x509.Name(attributes)
