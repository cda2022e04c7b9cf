"""Report lifecycle rules that do not depend on orchestration: validation and state changes."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from ris.ids import new_oid
from ris.store import audit
from ris.store.models import Report, ReportStatus, ReportVersion, utcnow
from ris.store.reports import correspondent_by_rpps, get_report

RPPS_PATTERN = r"^\d{11}$"


class ReportRuleError(ValueError):
    """A request that the report's state or the DSR rules do not allow; the message says which."""


def validate(session: Session, report_id: str, by_rpps: str, at: dt.datetime | None = None) -> ReportVersion:
    """Legal authentication by a radiologist: freezes version n+1 and mints its document id once."""
    report = get_report(session, report_id)
    if not (by_rpps.isdigit() and len(by_rpps) == 11):
        raise ReportRuleError("validator RPPS: must be the 11 digits of the RPPS number")
    if correspondent_by_rpps(session, by_rpps) is None:
        raise ReportRuleError(f"validator RPPS {by_rpps}: unknown radiologist")
    if report.status is ReportStatus.deleted:
        raise ReportRuleError(f"report {report_id}: deleted reports cannot be validated again")
    if report.status is ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: version {report.version} is already validated; edit it for a replacement"
        )
    if not report.body.strip():
        raise ReportRuleError(f"report {report_id}: text is empty, nothing to validate")
    when = at or utcnow()
    report.version += 1
    report.status = ReportStatus.validated
    report.validated_at = when
    report.validator_rpps = by_rpps
    report.provisional_since = None
    report.updated_at = utcnow()
    snapshot = ReportVersion(
        report_id=report.id,
        version=report.version,
        title=report.title,
        body=report.body,
        conclusion=report.conclusion,
        validated_at=when,
        validator_rpps=by_rpps,
        document_id=new_oid(),
    )
    session.add(report)
    session.add(snapshot)
    audit.record(
        session,
        actor=by_rpps,
        action="report.validate",
        object_type="report",
        object_id=report.id,
        version=report.version,
    )
    session.flush()
    return snapshot


def mark_provisional(session: Session, report_id: str, by_rpps: str) -> Report:
    """RIS.CRR.04: a report awaiting other radiologists' opinion; it never leaves the RIS until validated."""
    report = get_report(session, report_id)
    if correspondent_by_rpps(session, by_rpps) is None:
        raise ReportRuleError(f"by RPPS {by_rpps}: unknown radiologist")
    if report.status is ReportStatus.provisional:
        return report
    if report.status is not ReportStatus.draft:
        raise ReportRuleError(
            f"report {report_id}: only a draft can become provisional (it is {report.status.value})"
        )
    report.status = ReportStatus.provisional
    report.provisional_since = report.updated_at = utcnow()
    session.add(report)
    audit.record(
        session, actor=by_rpps, action="report.provisional", object_type="report", object_id=report.id
    )
    return report
