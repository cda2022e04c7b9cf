"""INS rule 28: only a qualified identity lends its INS to anything that leaves the system."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ris.store import audit
from ris.store.models import IdentityStatus, Patient
from ris.store.reports import load_bundle


def ins_transmissible(patient: Patient) -> bool:
    return patient.status is IdentityStatus.QUAL and bool(patient.ins_matricule and patient.ins_oid)


def ins_refusal_reason(patient: Patient) -> str | None:
    """Why the INS may not leave the system, in the user's terms; None when it may."""
    if ins_transmissible(patient):
        return None
    if patient.status is not IdentityStatus.QUAL:
        return f"identity status is {patient.status.value}, not QUAL (INS rule 28)"
    return "qualified identity without matricule INS and OID (INS rule 28)"


# Patient-facing uses of the INS decided per version: CDA recordTarget, DMP feed, the patient's mailbox.
PATIENT_FACING = ("cda", "dmp", "mss-patient")


def check_version(session: Session, report_id: str, version: int) -> dict[str, Any]:
    """Decide per patient-facing channel whether the version may carry the INS, and audit the decision.
    The result holds no health data: a flag and the reason in the user's terms."""
    patient = load_bundle(session, report_id, version).patient
    allowed = ins_transmissible(patient)
    reason = ins_refusal_reason(patient)
    channels = {channel: allowed for channel in PATIENT_FACING}
    audit.record(
        session,
        actor="engine",
        action="identity.check",
        object_type="report",
        object_id=report_id,
        version=version,
        patient_id=patient.id,
        ins_transmissible=allowed,
        reason=reason,
        channels=channels,
    )
    return {"ins_transmissible": allowed, "reason": reason, "channels": channels}
