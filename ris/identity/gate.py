"""INS rule 28: only a qualified identity lends its INS to anything that leaves the system."""

from __future__ import annotations

from ris.store.models import IdentityStatus, Patient


def ins_transmissible(patient: Patient) -> bool:
    return patient.status is IdentityStatus.QUAL and bool(patient.ins_matricule and patient.ins_oid)


def ins_refusal_reason(patient: Patient) -> str | None:
    """Why the INS may not leave the system, in the user's terms; None when it may."""
    if ins_transmissible(patient):
        return None
    if patient.status is not IdentityStatus.QUAL:
        return f"identity status is {patient.status.value}, not QUAL (INS rule 28)"
    return "qualified identity without matricule INS and OID (INS rule 28)"
