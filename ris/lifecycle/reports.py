"""Report lifecycle rules that do not depend on orchestration: validation, state changes, and the changes a
report takes while it is still a draft or provisional (text, distribution flags).

Every rule that changes a report reads its row locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's unit
of work holds the write lock from its start): an edit and a validation of the same report run one after
the other, so a validation never freezes a text that an edit overwrites a moment later, and an edit that
comes second finds the report validated and is refused. The report row is the first lock they take.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from ris.ids import new_oid
from ris.store import audit
from ris.store.models import Report, ReportStatus, ReportVersion, utcnow
from ris.store.reports import NotFound, correspondent_by_rpps

RPPS_PATTERN = r"^\d{11}$"
EDITABLE = (ReportStatus.draft, ReportStatus.provisional)  # what a validation has not frozen yet
# The distribution flags a draft or provisional report may change (the worklist's names, Report columns).
FLAGS = ("dmp_blocked", "mask_ps", "announcement_required", "invisible_legal_reps", "secret_connection")


class ReportRuleError(ValueError):
    """A request that the report's state or the DSR rules do not allow; the message says which."""


def _for_change(session: Session, report_id: str) -> Report:
    """The report row, locked until the end of the unit of work (see the module's docstring)."""
    report = session.get(Report, report_id, with_for_update=True, populate_existing=True)
    if report is None:
        raise NotFound(f"report {report_id!r} does not exist")
    return report


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
    report = _for_change(session, report_id)
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
    report = _for_change(session, report_id)
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
    report = _for_change(session, report_id)
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
    report = _for_change(session, report_id)
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
    report = _for_change(session, report_id)
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


def _editable(session: Session, report_id: str, actor: str) -> Report:
    """A report that may still change: a draft or a provisional one (validated versions stay frozen).
    Who may change it is the caller's permission check (`report.edit`: a secretary types a dictated
    draft as well as a radiologist amends it); validation alone needs the radiologist."""
    report = _for_change(session, report_id)
    if not actor.strip():
        raise ReportRuleError("by: who changes the report is required (an RPPS, ADELI or local user id)")
    if report.status is ReportStatus.validated:
        raise ReportRuleError(
            f"report {report_id}: version {report.version} is validated and stays as it was validated; "
            f"correct it with `ris report replace {report_id} --text-file FILE --by RPPS`"
        )
    if report.status is ReportStatus.deleted:
        raise ReportRuleError(f"report {report_id}: deleted, it does not change any more")
    return report


def change_draft(
    session: Session,
    report: Report,
    values: dict[str, Any],
    actor: str,
    source: str,
    *,
    also: tuple[str, ...] = (),
) -> list[str]:
    """Give a draft or provisional report these values; audit who changed which fields (`also`: fields the
    caller changed elsewhere in the same unit of work, e.g. the recipients). The audit entry names the
    fields and gives the new value of the flags only: the text is health data and stays in the report.
    Returns the names of the fields that changed, nothing recorded when none did. The caller checked the
    report's status (`EDITABLE`)."""
    changed = [name for name, value in values.items() if getattr(report, name) != value]
    if not changed and not also:
        return []
    for name in changed:
        setattr(report, name, values[name])
    report.updated_at = utcnow()
    session.add(report)
    audit.record(
        session,
        actor=actor,
        action="report.update",
        object_type="report",
        object_id=report.id,
        status=report.status.value,
        source=source,
        fields=[*changed, *also],
        flags={name: values[name] for name in changed if name in FLAGS},
    )
    return [*changed, *also]


def edit(session: Session, report_id: str, body: str, conclusion: str | None, actor: str) -> list[str]:
    """Amend the text (and the conclusion, when given) of a draft or provisional report, audited with who
    (RIS.CRR.04: a provisional report waiting for other opinions is amended before its validation).
    Returns the fields that changed: none when the text is the same."""
    report = _editable(session, report_id, actor)
    if not body.strip():
        raise ReportRuleError("text: must not be empty (the report's full text)")
    values = {"body": body} if conclusion is None else {"body": body, "conclusion": conclusion}
    return change_draft(session, report, values, actor, "edit")


def set_flags(session: Session, report_id: str, flags: dict[str, bool], actor: str) -> list[str]:
    """Change distribution flags of a draft or provisional report (they drive its distribution once it is
    validated), audited with who and the new values. Returns the flags that changed."""
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise ReportRuleError(f"{unknown[0]}: not a distribution flag ({', '.join(FLAGS)})")
    if not flags:
        raise ReportRuleError(f"flags: give at least one of {', '.join(FLAGS)}")
    report = _editable(session, report_id, actor)
    return change_draft(session, report, flags, actor, "flags")
