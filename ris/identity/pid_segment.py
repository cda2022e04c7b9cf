"""The PID segment's values: PAM-FR 2.11 with the CI-SIS INS annex (ins.md §8), for every message that
carries a patient (ORU / MDM to the PFI, the outbound PAM-FR feed).

INS rule 28: the INS (PID-3 INS repetition, patient mailbox) only leaves for a qualified identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from ris.hl7v2.er7 import escape
from ris.identity.gate import ins_transmissible
from ris.store.models import IdentityStatus, Patient

INS_AUTHORITY_NAMES = {  # PID-3 CX.4 namespace of the INS
    "1.2.250.1.213.1.4.8": "ASIP-SANTE-INS-NIR",
    "1.2.250.1.213.1.4.9": "ASIP-SANTE-INS-NIA",
    "1.2.250.1.213.1.4.10": "ASIP-SANTE-INS-NIR",  # test INS, written as in every ANS example
}
PATIENT_MAIL_DOMAIN = "patient.mssante.fr"

# ins.md §8.2 mapping table: local status -> outbound PID-32 (table 0445).
RELIABILITY = {
    IdentityStatus.QUAL: "VALI",  # with the INS in PID-3: « qualifiée » for PAM-FR receivers
    IdentityStatus.VALI: "VALI",  # without an INS (open point: likely reading)
    IdentityStatus.RECUP: "PROV",  # INS withheld (rule 28); open point
    IdentityStatus.PROV: "PROV",
}
ATTRIBUTES = {"douteuse": "DOUT", "fictive": "FICT", "homonyme": "HOMD"}


@dataclass(frozen=True)
class PidValues:
    pid_3: list[str]
    pid_5: list[str]
    pid_7: str
    pid_8: str
    pid_11: list[str]
    pid_31: str
    pid_32: list[str]


def ins_cx(patient: Patient) -> str:
    authority = INS_AUTHORITY_NAMES.get(patient.ins_oid or "", "ASIP-SANTE-INS")
    return f"{patient.ins_matricule}^^^{authority}&{patient.ins_oid}&ISO^INS"


def patient_mailbox(patient: Patient) -> str | None:
    """`<INS>@patient.mssante.fr`, only for a qualified identity."""
    return f"{patient.ins_matricule}@{PATIENT_MAIL_DOMAIN}" if ins_transmissible(patient) else None


def pid_values(patient: Patient, *, ipp_namespace: str, facility_oid: str) -> PidValues:
    identifiers = [f"{escape(patient.ipp)}^^^{escape(ipp_namespace)}&{facility_oid}&ISO^PI"]
    if ins_transmissible(patient):
        identifiers.append(ins_cx(patient))
    given_names = patient.birth_given_names or patient.first_birth_given_name
    names = [
        f"{escape(patient.birth_name)}^{escape(patient.first_birth_given_name)}^{escape(given_names)}^^^^L"
    ]
    used_name = patient.used_name or patient.birth_name
    used_given = patient.used_given_name or patient.first_birth_given_name
    if (used_name, used_given) != (patient.birth_name, patient.first_birth_given_name):
        names.append(f"{escape(used_name)}^{escape(used_given)}^^^^^D")
    addresses = []
    if patient.street or patient.city or patient.postal_code:
        street, city, zip_code = (
            escape(v or "") for v in (patient.street, patient.city, patient.postal_code)
        )
        addresses.append(f"{street}^^{city}^^{zip_code}^FRA^H")
    addresses.append(f"^^^^^^BDL^^{patient.birth_place_code}")  # birth place: COG in XAD.9
    reliability = [RELIABILITY[patient.status]]
    reliability += [ATTRIBUTES[a] for a in patient.attributes if a in ATTRIBUTES]
    return PidValues(
        pid_3=identifiers,
        pid_5=names,
        pid_7=patient.birth_date.strftime("%Y%m%d"),
        pid_8=patient.sex,
        pid_11=addresses,
        pid_31="N",
        pid_32=reliability,
    )
