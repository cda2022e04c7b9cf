"""The patient's refusals of MSSanté sending as the store reads them: the append-only history
(`PatientRefusal`, guarded here like the audit trail) and the effective refusal of one report, which
`load_bundle` computes once per bundle. Recording and overriding them is a lifecycle rule
(`ris.lifecycle.refusals`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import audit
from ris.store.models import PatientRefusal, RefusalChannel, Report

Source = Literal["report", "patient", "none"]


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


@sa.event.listens_for(Session, "before_flush")
def _refuse_refusal_rewrites(session: Session, _context, _instances) -> None:
    """The refusal history is append-only: a withdrawal is a new row, never an edit."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, PatientRefusal) and (obj in session.deleted or session.is_modified(obj)):
            raise audit.AuditTrailIsAppendOnly(f"patient refusal {obj.id} cannot be changed or deleted")
