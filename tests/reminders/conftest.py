"""Reports that wait on a radiologist, and the sandbox SMTP server with the mail sender block on it."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlmodel import Session

from ris.ids import new_oid
from ris.store.models import Exam, Report, ReportStatus
from ris.store.reports import correspondent_by_rpps
from sandbox.smtp import SmtpSandbox
from tests import factories

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # "now" of the tests
_seq = itertools.count(1)
RADIOLOGIST_MAIL = "emile.lefevre@imagerie-demo.mssante.fr"
NO_MAIL_RPPS = "10005555555"


def radiologist(session: Session, rpps: str = factories.RADIOLOGIST_RPPS) -> None:
    if correspondent_by_rpps(session, rpps) is None:
        mail = RADIOLOGIST_MAIL if rpps == factories.RADIOLOGIST_RPPS else None
        factories.correspondent(session, rpps, "LEFÈVRE" if mail else "SANSMAIL", "Émile", mail)


def provisional_report(
    session: Session, since: dt.datetime, *, author_rpps: str = factories.RADIOLOGIST_RPPS
) -> Report:
    """A report marked provisional at `since` by `author_rpps`."""
    radiologist(session, author_rpps)
    n = next(_seq)
    pat = factories.patient(session)
    exam = Exam(
        order_id=f"RORD{n:05d}",
        accession_number=f"RACC{n:05d}",
        study_instance_uid=f"1.2.250.1.999.7.{n}",
        patient_id=pat.id,
        modality="MR",
        exam_code="24590-2",
        exam_label="IRM cérébrale",
        started_at=since - dt.timedelta(hours=2),
    )
    session.add(exam)
    session.flush()
    report = Report(
        id=f"RP{n:05d}",
        exam_id=exam.id,
        set_id=new_oid(),
        title="IRM cérébrale",
        body="Résultats : à discuter.",
        author_rpps=author_rpps,
        status=ReportStatus.provisional,
        provisional_since=since,
    )
    session.add(report)
    session.commit()
    return report


def announcement_pending(session: Session, validated_at: dt.datetime, *, recorded: bool = False) -> Report:
    """A validated report whose announcement is required (and recorded when `recorded`)."""
    report = factories.validated_report(session, copies=0, announcement_required=True).report
    report.validated_at = validated_at
    if recorded:
        report.announcement_recorded_at = validated_at + dt.timedelta(hours=1)
        report.announcement_recorded_by = report.validator_rpps
    session.add(report)
    session.commit()
    return report


@pytest.fixture
async def smtp(tmp_path):
    """The sandbox SMTP server, STARTTLS required, certificate from its own test CA."""
    async with SmtpSandbox(folder=tmp_path / "mss-received", security="starttls") as server:
        yield server


@pytest.fixture
async def mail_sender(prefect_server, smtp):
    """The site's mail sender block pointing at the sandbox, verifying it against the sandbox CA."""
    from blocks import DEFAULT_NAME
    from blocks.mail import MailSender

    block = MailSender(
        host="localhost",
        port=smtp.port,
        security="starttls",
        ca_bundle=str(smtp.ca_pem),
        from_address="ris@imagerie-demo.mssante.fr",
        from_label="RIS Centre d'Imagerie Démo",
        timeout_s=10,
    )
    await block.asave(DEFAULT_NAME, overwrite=True)
    return block
