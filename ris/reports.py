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


def _radiologist(session: Session, by_rpps: str, role: str) -> None:
    if not (by_rpps.isdigit() and len(by_rpps) == 11):
        raise ReportRuleError(f"{role} RPPS: must be the 11 digits of the RPPS number")
    if correspondent_by_rpps(session, by_rpps) is None:
        raise ReportRuleError(f"{role} RPPS {by_rpps}: unknown radiologist")


def _freeze(
    session: Session, report: Report, by_rpps: str, at: dt.datetime | None, action: str
) -> ReportVersion:
    """Legal authentication: version n+1 frozen from the report's text, its document id minted once."""
    if not report.body.strip():
        raise ReportRuleError(f"report {report.id}: text is empty, nothing to validate")
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
        action=action,
        object_type="report",
        object_id=report.id,
        version=report.version,
    )
    session.flush()
    return snapshot


def validate(session: Session, report_id: str, by_rpps: str, at: dt.datetime | None = None) -> ReportVersion:
    """Legal authentication by a radiologist: freezes version n+1 and mints its document id once."""
    report = get_report(session, report_id)
    _radiologist(session, by_rpps, "validator")
    if report.status is ReportStatus.deleted:
        raise ReportRuleError(f"report {report_id}: deleted reports cannot be validated again")
    if report.status is ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: version {report.version} is already validated; "
            f"replace it with `ris report replace {report_id} --text-file FILE --by RPPS`"
        )
    return _freeze(session, report, by_rpps, at, "report.validate")


def replace(
    session: Session,
    report_id: str,
    body: str,
    conclusion: str | None,
    by_rpps: str,
    at: dt.datetime | None = None,
) -> ReportVersion:
    """A validated report corrected (RIS.MSS.15): its new text validated as version n+1, which replaces
    version n everywhere it went (CDA RPLC, same setId, "annule et remplace")."""
    report = get_report(session, report_id)
    _radiologist(session, by_rpps, "validator")
    if report.status is not ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: only a validated report is replaced (it is {report.status.value})"
        )
    if not body.strip():
        raise ReportRuleError("text: must not be empty (the replacement's full text)")
    new_conclusion = report.conclusion if conclusion is None else conclusion
    if body == report.body and new_conclusion == report.conclusion:
        raise ReportRuleError(f"report {report_id}: text and conclusion unchanged, nothing to replace")
    report.body, report.conclusion = body, new_conclusion
    return _freeze(session, report, by_rpps, at, "report.replace")


def delete(session: Session, report_id: str, reason: str, by_rpps: str) -> Report:
    """A validated report withdrawn: status deleted, audited with who and why; its deletion run unpublishes
    it wherever it went."""
    report = get_report(session, report_id)
    _radiologist(session, by_rpps, "by")
    if not reason.strip():
        raise ReportRuleError("reason: must say why the report is deleted (kept in the audit trail)")
    if report.status is ReportStatus.deleted:
        return report
    if report.status is not ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: only a validated report is deleted (it is {report.status.value}); "
            "a draft never left the RIS"
        )
    report.status = ReportStatus.deleted
    report.updated_at = utcnow()
    session.add(report)
    audit.record(
        session,
        actor=by_rpps,
        action="report.delete",
        object_type="report",
        object_id=report.id,
        version=report.version,
        reason=reason.strip()[:500],
    )
    return report


def record_announcement(
    session: Session, report_id: str, by_rpps: str, at: dt.datetime | None = None
) -> Report:
    """ "Annonce réalisée" (RIS.CRR.03): who, when, audited. Recording it twice keeps the first record."""
    report = get_report(session, report_id)
    _radiologist(session, by_rpps, "by")
    if report.status is not ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: the announcement is recorded on a validated report (it is "
            f"{report.status.value})"
        )
    if not report.announcement_required:
        raise ReportRuleError(f"report {report_id}: no announcement is required for this report")
    if report.announcement_recorded_at is not None:
        return report
    report.announcement_recorded_at = at or utcnow()
    report.announcement_recorded_by = by_rpps
    report.updated_at = utcnow()
    session.add(report)
    audit.record(
        session,
        actor=by_rpps,
        action="report.announce",
        object_type="report",
        object_id=report.id,
        version=report.version,
        at=report.announcement_recorded_at.isoformat(),
    )
    return report


def mark_provisional(session: Session, report_id: str, by_rpps: str) -> Report:
    """RIS.CRR.04: a report awaiting other radiologists' opinion; it never leaves the RIS until validated."""
    report = get_report(session, report_id)
    _radiologist(session, by_rpps, "by")
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
