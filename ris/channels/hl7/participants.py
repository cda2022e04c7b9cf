"""PRT segments after the document OBX (hl7v2-transport.md §4): sender, MSSanté recipients, reply address.

PRT is pre-adopted from HL7 v2.9 and unknown to hl7apy's 2.5 / 2.6 models, so these lines are composed
here and placed after the document OBX by the message builder.
"""

from __future__ import annotations

from ris.channels.hl7.vocabulary import PS_AUTHORITY, ST_AUTHORITY
from ris.hl7v2.er7 import escape
from ris.store.models import Correspondent, Patient


def _prt(role: str, *, person: str = "", organisation: str = "", address: str = "", net: bool = True) -> str:
    fields = ["PRT", "", "UC", "", f"{role}^^participation", person, "", "", organisation]
    if address:
        fields += [""] * 6 + [f"^{'NET' if net else ''}^X.400^{escape(address)}"]
    while fields[-1] == "":
        fields.pop()
    return "|".join(fields)


def national_ps_id(person: Correspondent) -> str:
    """IdNatPS of a professional with an RPPS: 8 + the 11 RPPS digits (goes with IDNPS)."""
    return f"8{person.rpps}"


def ps_xcn(person: Correspondent) -> str:
    return (
        f"{national_ps_id(person)}^{escape(person.family)}^{escape(person.given or '')}"
        f"^^^^^^{PS_AUTHORITY}^D^^^IDNPS"
    )


def sender(validator: Correspondent, *, facility_name: str, finess_geo: str) -> str:
    """SB: the validating radiologist and the facility (DMP VIHF / SubmissionSet author)."""
    organisation = f"{escape(facility_name)}^^^^^{ST_AUTHORITY}^FINEG^^^{finess_geo}"
    return _prt("SB", person=ps_xcn(validator), organisation=organisation)


def ps_recipient(person: Correspondent, address: str) -> str:
    """RCT for a professional (PRT-5) or, without an RPPS, an organisation (PRT-8 name only)."""
    if person.rpps:
        return _prt("RCT", person=ps_xcn(person), address=address)
    return _prt("RCT", organisation=escape(person.organisation or person.family), address=address)


def patient_recipient(patient: Patient, mailbox: str) -> str:
    """RCT for the patient's Mon espace santé mailbox; PRT-5.9 is the bare INS OID, PRT-5.13 `INS`."""
    person = (
        f"{patient.ins_matricule}^{escape(patient.birth_name)}^{escape(patient.first_birth_given_name)}"
        f"^^^^^^{patient.ins_oid}^L^^^INS"
    )
    return _prt("RCT", person=person, address=mailbox, net=False)


def reply_to(address: str) -> str:
    return _prt("REPLY", address=address, net=False)
