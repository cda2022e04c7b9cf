"""Loading a report version with everything needed to build and send its documents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, select

from ris.store import refusals as patient_refusals
from ris.store.models import (
    Correspondent,
    Delivery,
    Exam,
    Patient,
    Report,
    ReportRecipient,
    ReportStatus,
    ReportVersion,
)


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class ReportBundle:
    """One validated version of a report and its context, read in one session."""

    report: Report
    version: ReportVersion
    exam: Exam
    patient: Patient
    requester: Correspondent | None
    recipients: list[tuple[Correspondent, str]]  # (correspondent, role) in insertion order
    validator: Correspondent | None
    author: Correspondent | None
    previous: ReportVersion | None  # the replaced version, for versions >= 2
    # The effective refusals (RIS.MSS.21, RIS.MSS.25): the report's override, else the patient's latest
    # choice. Read this, never `report.refuse_mss_*` alone (None there means "follow the patient").
    refusals: patient_refusals.Refusals


def get_report(session: Session, report_id: str) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"report {report_id!r} does not exist")
    return report


def correspondent_by_rpps(session: Session, rpps: str | None) -> Correspondent | None:
    if not rpps:
        return None
    return session.exec(select(Correspondent).where(Correspondent.rpps == rpps)).first()


def get_version(session: Session, report_id: str, version: int) -> ReportVersion:
    stmt = select(ReportVersion).where(ReportVersion.report_id == report_id, ReportVersion.version == version)
    found = session.exec(stmt).first()
    if found is None:
        raise NotFound(f"report {report_id!r} has no validated version {version}")
    return found


def load_bundle(session: Session, report_id: str, version: int | None = None) -> ReportBundle:
    report = get_report(session, report_id)
    number = version if version is not None else report.version
    snapshot = get_version(session, report_id, number)
    exam = session.get(Exam, report.exam_id)
    patient = session.get(Patient, exam.patient_id)
    requester = session.get(Correspondent, exam.requester_id) if exam.requester_id else None
    rows = session.exec(
        select(ReportRecipient, Correspondent)
        .join(Correspondent, Correspondent.id == ReportRecipient.correspondent_id)
        .where(ReportRecipient.report_id == report_id)
        .order_by(ReportRecipient.id)
    ).all()
    previous = get_version(session, report_id, number - 1) if number > 1 else None
    return ReportBundle(
        report=report,
        version=snapshot,
        exam=exam,
        patient=patient,
        requester=requester,
        recipients=[(c, r.role) for r, c in rows],
        validator=correspondent_by_rpps(session, snapshot.validator_rpps),
        author=correspondent_by_rpps(session, report.author_rpps),
        previous=previous,
        refusals=patient_refusals.for_report(session, report, patient.id),
    )


def undispatched_versions(
    session: Session, validated_after: dt.datetime | None = None, validated_before: dt.datetime | None = None
) -> list[tuple[str, int]]:
    """Current validated versions with no delivery planned: their lifecycle never ran (or never got
    that far), for example when validation happened while the engine was down. `validated_after` bounds
    how far back: a run's idempotency key lives as long as the orchestration keeps the run, and an
    older version whose run failed before planning would otherwise get a new run at every worker start
    (`ris report dispatch` starts it on purpose). `validated_before` leaves out the versions whose run may
    simply not have planned yet."""
    planned = select(Delivery.id).where(Delivery.report_id == Report.id, Delivery.version == Report.version)
    stmt = select(Report.id, Report.version).where(Report.status == ReportStatus.validated, ~planned.exists())
    if validated_after is not None:
        stmt = stmt.where(Report.validated_at > validated_after)
    if validated_before is not None:
        stmt = stmt.where(Report.validated_at <= validated_before)
    stmt = stmt.order_by(Report.validated_at)
    return [(rid, version) for rid, version in session.exec(stmt)]
