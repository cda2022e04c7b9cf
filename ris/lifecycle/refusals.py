"""Patient refusals of MSSanté sending (mssante.md §4, RIS.MSS.21 and RIS.MSS.25).

A refusal is stored at patient level, append-only (`PatientRefusal`: refused or withdrawn, when, by whom):
the latest row per channel is the patient's current choice. A report may override it
(`Report.refuse_mss_patient` / `refuse_mss_ps`: None follows the patient, True / False decide for this
report). `effective()` is the one rule that combines them (`ris.store.refusals`, where the store reads the
history and guards it append-only); `load_bundle` computes it once per bundle, and the routing reads
`bundle.refusals`. Here: recording a refusal or an override, with its checks and audit.

Nothing here logs or returns a name, a NIR or a birth date: patients are named by their IPP only.
"""

from __future__ import annotations

import datetime as dt

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
from ris.store.refusals import effective, history, latest

CHANNELS = tuple(c.value for c in RefusalChannel)
WORKLIST = "worklist"
REASON_MAX = 200
# Per channel, the report column that overrides the patient's refusal.
OVERRIDE_COLUMN = {RefusalChannel.mss_patient: "refuse_mss_patient", RefusalChannel.mss_ps: "refuse_mss_ps"}


class RefusalRuleError(ValueError):
    """Bad input for a refusal; the message names the field and the rule (never a patient's traits)."""


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
