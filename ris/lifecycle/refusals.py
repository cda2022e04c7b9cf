"""Patient refusals of MSSanté sending (mssante.md §4, RIS.MSS.21 and RIS.MSS.25).

A refusal is stored at patient level, append-only (`PatientRefusal`: refused or withdrawn, when, by whom):
the latest row per channel is the patient's current choice. A report may override it
(`Report.refuse_mss_patient` / `refuse_mss_ps`: None follows the patient, True / False decide for this
report). `effective()` is the one rule that combines them; `load_bundle` computes it once per bundle, and the
routing reads `bundle.refusals`.

Nothing here logs or returns a name, a NIR or a birth date: patients are named by their IPP only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import audit
from ris.store.models import (
    Correspondent,
    Exam,
    Patient,
    PatientRefusal,
    RefusalChannel,
    Report,
    ReportStatus,
    utcnow,
)

Source = Literal["report", "patient", "none"]
CHANNELS = tuple(c.value for c in RefusalChannel)
WORKLIST = "worklist"
REASON_MAX = 200
# Per channel, the report column that overrides the patient's refusal.
OVERRIDE_COLUMN = {RefusalChannel.mss_patient: "refuse_mss_patient", RefusalChannel.mss_ps: "refuse_mss_ps"}


class RefusalRuleError(ValueError):
    """Bad input for a refusal; the message names the field and the rule (never a patient's traits)."""


class RefusalRow(Protocol):
    channel: str
    refused: bool


@dataclass(frozen=True)
class Refusals:
    """The effective refusals of one report, and where each comes from."""

    mss_patient: bool = False
    mss_ps: bool = False
    mss_patient_source: Source = "none"
    mss_ps_source: Source = "none"

    @property
    def source(self) -> Source:
        """'report' when an override of this report decides a channel, else 'patient' when a patient's
        choice does, else 'none' (nothing was ever recorded)."""
        sources = (self.mss_patient_source, self.mss_ps_source)
        return "report" if "report" in sources else "patient" if "patient" in sources else "none"

    def refused(self, channel: str) -> bool:
        return self.mss_patient if channel == RefusalChannel.mss_patient else self.mss_ps


def latest(history: Iterable[RefusalRow]) -> dict[str, bool]:
    """The patient's current choice per channel: the last row recorded for it (history in recorded order)."""
    current: dict[str, bool] = {}
    for row in history:
        current[str(row.channel)] = bool(row.refused)
    return current


def _one(override: bool | None, current: bool | None) -> tuple[bool, Source]:
    if override is not None:
        return bool(override), "report"
    if current is not None:
        return current, "patient"
    return False, "none"


def effective(report: Report | None, history: Iterable[RefusalRow]) -> Refusals:
    """Pure: the report's override when it has one, else the patient's latest row, else no refusal."""
    current = latest(history)
    patient, patient_source = _one(
        report.refuse_mss_patient if report else None, current.get(RefusalChannel.mss_patient.value)
    )
    ps, ps_source = _one(report.refuse_mss_ps if report else None, current.get(RefusalChannel.mss_ps.value))
    return Refusals(patient, ps, patient_source, ps_source)


def history(session: Session, patient_id: int) -> list[PatientRefusal]:
    """Every refusal and withdrawal of the patient, in recorded order."""
    stmt = select(PatientRefusal).where(PatientRefusal.patient_id == patient_id).order_by(PatientRefusal.id)
    return list(session.exec(stmt).all())


def for_report(session: Session, report: Report | None, patient_id: int) -> Refusals:
    return effective(report, history(session, patient_id))


def patient_of(session: Session, report: Report) -> int:
    """The id of the report's patient (through its exam)."""
    return session.exec(select(Exam.patient_id).where(Exam.id == report.exam_id)).one()


# --- checks and changes ----------------------------------------------------------------------------------


def patient_by_ipp(session: Session, ipp: str) -> Patient:
    patient = session.exec(select(Patient).where(Patient.ipp == ipp)).first()
    if patient is None:
        raise RefusalRuleError(f"IPP {ipp!r}: no patient with this IPP in the RIS")
    return patient


def check_channel(channel: str) -> RefusalChannel:
    try:
        return RefusalChannel(channel)
    except ValueError:
        raise RefusalRuleError(
            f"channel {channel!r}: must be one of {', '.join(CHANNELS)} (RIS.MSS.21, RIS.MSS.25)"
        ) from None


def check_user(session: Session, by: str) -> str:
    """The user acting: the 11 digits of an RPPS known to the RIS as a correspondent."""
    if not (by.isdigit() and len(by) == 11):
        raise RefusalRuleError("by: must be the 11 digits of the user's RPPS number")
    if session.exec(select(Correspondent.id).where(Correspondent.rpps == by)).first() is None:
        raise RefusalRuleError(f"by: RPPS {by} is not a known correspondent of the RIS")
    return by


def check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    if len(reason.strip()) > REASON_MAX:
        raise RefusalRuleError(f"reason: at most {REASON_MAX} characters")
    return reason.strip()


def record(
    session: Session,
    patient: Patient,
    channel: str,
    refused: bool,
    by: str,
    reason: str | None = None,
    *,
    at: dt.datetime | None = None,
) -> PatientRefusal | None:
    """Append the patient's refusal (or its withdrawal) of one channel, audited with `by` as the actor.
    Returns None, storing nothing, when it would not change the patient's current choice. The caller
    checks `by` (`check_user`) when it is a person."""
    which = check_channel(channel)
    reason = check_reason(reason)
    if not by or len(by) > 64:
        raise RefusalRuleError("by: the user's RPPS or the source, 1 to 64 characters")
    current = latest(history(session, patient.id)).get(which.value, False)
    if current == refused:
        return None
    row = PatientRefusal(
        patient_id=patient.id, channel=which, refused=refused, by=by, reason=reason, at=at or utcnow()
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="patient.refusal" if refused else "patient.refusal_withdrawn",
        object_type="patient",
        object_id=patient.id,
        channel=which.value,
        refusal_id=row.id,
    )
    return row


def override(
    session: Session,
    report: Report,
    channel: str,
    value: bool | None,
    by: str,
    *,
    at: dt.datetime | None = None,
) -> bool:
    """Set (True / False) or clear (None: follow the patient) this report's override of one channel,
    audited with `by`. Returns False, storing nothing, when the override is already that value. The caller
    checks `by` (`check_user`). Routing reads it when a version is planned and when a held-back patient
    copy is released: deliveries already planned keep their status."""
    which = check_channel(channel)
    if report.status is ReportStatus.deleted:
        raise RefusalRuleError(f"report {report.id}: deleted, nothing of it is sent any more")
    column = OVERRIDE_COLUMN[which]
    previous = getattr(report, column)
    if (previous is None) == (value is None) and previous == value:
        return False
    setattr(report, column, value)
    report.refusal_override_by = by
    report.refusal_override_at = at or utcnow()
    report.updated_at = utcnow()
    session.add(report)
    audit.record(
        session,
        actor=by,
        action="report.refusal_override",
        object_type="report",
        object_id=report.id,
        channel=which.value,
        override=_word(value),
        previous=_word(previous),
    )
    session.flush()
    return True


def _word(value: bool | None) -> str:
    return {True: "refuse", False: "allow", None: "follow-patient"}[value]


def patient_view(session: Session, patient: Patient) -> dict[str, object]:
    """What `ris identity refusals` shows: the patient-level values, the history, and the reports that
    override them. Ids, RPPS and dates only: no name, NIR or birth date."""
    rows = history(session, patient.id)
    current = effective(None, rows)
    overridden = session.exec(
        select(Report)
        .join(Exam, Exam.id == Report.exam_id)
        .where(
            Exam.patient_id == patient.id,
            sa.or_(Report.refuse_mss_patient.is_not(None), Report.refuse_mss_ps.is_not(None)),
        )
        .order_by(Report.id)
    ).all()
    return {
        "effective": {"mss-patient": current.mss_patient, "mss-ps": current.mss_ps},
        "history": [
            {
                "at": row.at.isoformat(timespec="seconds"),
                "channel": RefusalChannel(row.channel).value,
                "refused": row.refused,
                "by": row.by,
                "reason": row.reason,
            }
            for row in rows
        ],
        "overrides": [
            {
                "report": report.id,
                "mss-patient": _word(report.refuse_mss_patient),
                "mss-ps": _word(report.refuse_mss_ps),
                "by": report.refusal_override_by,
                "at": report.refusal_override_at.isoformat(timespec="seconds")
                if report.refusal_override_at
                else None,
            }
            for report in overridden
        ],
    }


@sa.event.listens_for(Session, "before_flush")
def _refuse_refusal_rewrites(session: Session, _context, _instances) -> None:
    """The refusal history is append-only: a withdrawal is a new row, never an edit."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, PatientRefusal) and (obj in session.deleted or session.is_modified(obj)):
            raise audit.AuditTrailIsAppendOnly(f"patient refusal {obj.id} cannot be changed or deleted")
