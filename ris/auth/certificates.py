"""The pool of RPPS-Rang ORG certificates of an SCM structure (RIS.AUTH.01–02, RIS.MSS.24): each liberal
radiologist's activity has its own certificate, and what the engine sends for a report (MSSanté from the
nominative mailbox, DMP feed, INSi call) goes with the certificate of the radiologist who validated it.

The choice is checked before anything leaves: no certificate for this RPPS, an unreadable file, a
certificate not yet or no longer valid, or a key that does not open or does not match all give one line
naming the RPPS and the rule, and nothing is sent."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, select

from ris.channels.dmp.client import DmpConfig
from ris.channels.dmp.transactions import Signing
from ris.channels.mail import SmtpConfig
from ris.channels.mssante.smtp import OperatorConfig
from ris.identity.insi_client import InsiSettings
from ris.store.models import Delivery, ReportVersion

SmtpSettings = TypeVar("SmtpSettings", SmtpConfig, OperatorConfig)


class CertificateUnavailable(ValueError):
    pass


@dataclass(frozen=True)
class RppsRangCertificate:
    rpps: str
    rang: str | None  # the activity's rank when the radiologist practises in several structures
    cert_path: Path
    key_path: Path
    passphrase: str | None = None
    mailbox: str | None = None  # the radiologist's personal MSSanté mailbox (nominative sending)

    @property
    def label(self) -> str:
        return f"RPPS-Rang {self.rpps}{f'-{self.rang}' if self.rang else ''}"


def _checked(entry: RppsRangCertificate, now: dt.datetime) -> dt.datetime:
    """The certificate's end of validity, once the certificate and its key pass every check."""
    try:
        cert = x509.load_pem_x509_certificate(entry.cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateUnavailable(
            f"{entry.label}: cert_path {entry.cert_path} is not a readable PEM certificate"
        ) from exc
    if cert.not_valid_after_utc <= now:
        raise CertificateUnavailable(
            f"{entry.label}: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}: renew it"
        )
    if cert.not_valid_before_utc > now:
        raise CertificateUnavailable(
            f"{entry.label}: the certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} only"
        )
    try:
        password = entry.passphrase.encode() if entry.passphrase else None
        key = serialization.load_pem_private_key(entry.key_path.read_bytes(), password=password)
    except OSError as exc:
        raise CertificateUnavailable(f"{entry.label}: key_path {entry.key_path} cannot be read") from exc
    except (ValueError, TypeError) as exc:
        raise CertificateUnavailable(
            f"{entry.label}: the passphrase does not open the key {entry.key_path}"
        ) from exc
    same = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if key.public_key().public_bytes(pem, same) != cert.public_key().public_bytes(pem, same):
        raise CertificateUnavailable(f"{entry.label}: the key does not belong to the certificate")
    return cert.not_valid_after_utc


def select_certificate(
    pool: Sequence[RppsRangCertificate], rpps: str, *, rang: str | None = None, now: dt.datetime | None = None
) -> RppsRangCertificate:
    """The validating radiologist's certificate (of this activity when `rang` is given); among several
    valid ones, the one valid the longest."""
    now = now or dt.datetime.now(dt.UTC)
    matches = [c for c in pool if c.rpps == rpps and (rang is None or c.rang == rang)]
    if not matches:
        what = f"RPPS {rpps}" + (f" rang {rang}" if rang else "")
        raise CertificateUnavailable(
            f"no RPPS-Rang certificate for the acting radiologist ({what}) in the pool: add it to the "
            "RIS RPPS-Rang Certificates block"
        )
    valid, refusals = [], []
    for entry in matches:
        try:
            valid.append((_checked(entry, now), entry))
        except CertificateUnavailable as exc:
            refusals.append(str(exc))
    if not valid:
        raise CertificateUnavailable(refusals[0])
    return max(valid, key=lambda pair: pair[0])[1]


def for_acting(
    pool: Sequence[RppsRangCertificate] | None, rpps: str | None, *, now: dt.datetime | None = None
) -> RppsRangCertificate | None:
    """The acting radiologist's certificate when the site keeps a pool (an SCM); None without a pool, where
    the endpoint block's own certificate applies as before."""
    if not pool:
        return None
    if not rpps:
        raise CertificateUnavailable(
            "the acting radiologist's RPPS is unknown: it chooses the RPPS-Rang certificate of the call"
        )
    return select_certificate(pool, rpps, now=now)


def personal_mailboxes(pool: Sequence[RppsRangCertificate] | None) -> dict[str, str]:
    """RPPS -> personal MSSanté mailbox, from the pool's entries that name one (RIS.MSS.24)."""
    return {entry.rpps: entry.mailbox for entry in pool or () if entry.mailbox}


def version_validator(session: Session, report_id: str, version: int) -> str:
    """The RPPS of the radiologist who validated this version: what leaves for it goes with their
    certificate."""
    return session.exec(
        select(ReportVersion.validator_rpps).where(
            ReportVersion.report_id == report_id, ReportVersion.version == version
        )
    ).one()


def delivery_certificate(
    session: Session,
    pool: Sequence[RppsRangCertificate],
    delivery_id: int,
    *,
    now: dt.datetime | None = None,
) -> RppsRangCertificate:
    """The certificate a delivery leaves with from an SCM (MSSanté RIS.MSS.24, DMP RIS.AUTH.01): that of the
    radiologist who validated the version it carries; CertificateUnavailable when none is usable."""
    row = session.get(Delivery, delivery_id)
    return select_certificate(pool, version_validator(session, row.report_id, row.version), now=now)


def for_mssante(config: SmtpSettings, certificate: RppsRangCertificate) -> SmtpSettings:
    """The operator submission settings with the radiologist's certificate (nominative BAL, RIS.MSS.24)."""
    return dataclasses.replace(
        config,
        client_cert=str(certificate.cert_path),
        client_key=str(certificate.key_path),
        key_passphrase=certificate.passphrase,
    )


def for_insi(settings: InsiSettings, certificate: RppsRangCertificate) -> InsiSettings:
    """The INSi settings with the radiologist's certificate (RIS.AUTH.02)."""
    return dataclasses.replace(
        settings,
        cert_path=certificate.cert_path,
        key_path=certificate.key_path,
        key_password=certificate.passphrase,
    )


def for_dmp(config: DmpConfig, certificate: RppsRangCertificate) -> tuple[DmpConfig, Signing]:
    """The DMP endpoint settings and the VIHF signing material with the validating radiologist's
    certificate (RIS.AUTH.01): the DMP checks that the assertion is signed by the certificate of the TLS
    session, so both change together."""
    config = dataclasses.replace(
        config,
        client_cert=str(certificate.cert_path),
        client_key=str(certificate.key_path),
        key_passphrase=certificate.passphrase,
    )
    return config, Signing.from_files(config.client_cert, config.client_key, config.key_passphrase)
