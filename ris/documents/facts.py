"""What both documents say, checked once before anything is rendered.

`collect()` turns a ReportBundle into `Facts`: every value the PDF and the CDA print, already checked
against the rules, so that a refused report never produces a half-built document. Error messages name
the field and the rule, never a value (they may reach Prefect, and values are health data).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ris.clock import local
from ris.identity.datamatrix import INS_OIDS, DatamatrixError, payload_for
from ris.identity.gate import ins_transmissible
from ris.lifecycle.routing import listed_recipients
from ris.site import specialties
from ris.site.settings import SiteSettings
from ris.store.models import Correspondent, Exam, IdentityStatus, Patient
from ris.store.reports import ReportBundle

# JDV_ModaliteAcquisition_CISIS (1.2.250.1.213.1.1.5.618), the imaging modalities a RIS produces.
MODALITIES = {
    "BDUS": "Échodensitométrie osseuse",
    "BMD": "Ostéodensitométrie",
    "CR": "Radiographie assistée par ordinateur",
    "CT": "Tomodensitométrie",
    "DX": "Radiographie numérique",
    "IO": "Radiographie intrabuccale",
    "MG": "Mammographie",
    "MR": "Résonance magnétique",
    "NM": "Médecine nucléaire",
    "PT": "TEP : Tomographie par émission de positons",
    "PX": "Panaromique X-Ray",
    "RF": "Radio-fluoroscopie",
    "RG": "Imagerie radiographique",
    "US": "Échographie",
    "XA": "Angiographie X-Ray",
}
SEX_LABELS = {"F": "Féminin", "M": "Masculin", "U": "Inconnu"}
NIA_OID = "1.2.250.1.213.1.4.9"
_RPPS = re.compile(r"^\d{11}$")
_MATRICULE = re.compile(r"^\d{5}[0-9AB]\d{9}$")
_LOINC = re.compile(r"^\d{1,7}-\d$")


class DocumentError(ValueError):
    """The report cannot be turned into documents; the message names the field and the rule."""


@dataclass(frozen=True)
class Person:
    title: str | None
    given: str | None
    family: str
    rpps: str | None
    mss_address: str | None
    organisation: str | None
    specialty: tuple[str, str] = (specialties.DEFAULT, specialties.IMAGING[specialties.DEFAULT])  # J01

    @property
    def display(self) -> str:
        """'Dr Émile LEFÈVRE' (RIS.CRR.01 wording)."""
        return " ".join(p for p in (self.title, self.given, self.family.upper()) if p)


@dataclass(frozen=True)
class Facts:
    document_id: str
    set_id: str
    version: int
    previous_document_id: str | None
    previous_validated_at: dt.datetime | None
    title: str
    body: str
    conclusion: str
    validated_at: dt.datetime  # aware, in the site's time zone
    created_at: dt.datetime  # aware, in the site's time zone
    validator: Person
    author: Person
    requester: Person | None
    recipients: list[str]
    patient: Patient
    exam: Exam
    ins_qualified: bool
    datamatrix_payload: str | None
    exam_started_at: dt.datetime
    exam_ended_at: dt.datetime | None
    modality_label: str
    confidentiality: str

    @property
    def ins_nature(self) -> str:
        """'NIA' or 'NIR', told by the OID (the digits cannot tell them apart, ins.md §5)."""
        return "NIA" if self.patient.ins_oid == NIA_OID else "NIR"


def _person(row: Correspondent, field: str, *, rpps_required: bool) -> Person:
    if not (row.family or "").strip():
        raise DocumentError(f"{field}.family: missing name of the health professional")
    if rpps_required and not (row.rpps and _RPPS.match(row.rpps)):
        raise DocumentError(f"{field}.rpps: the 11-digit RPPS is required (RIS.CRR.01)")
    code = row.specialty_code or specialties.DEFAULT
    if code not in specialties.IMAGING:
        raise DocumentError(f"{field}.specialty_code: {code} is not an imaging specialty of JDV_J01")
    return Person(
        row.title,
        row.given,
        row.family,
        row.rpps,
        row.mss_address,
        row.organisation,
        (code, specialties.IMAGING[code]),
    )


def _check_identity(patient: Patient, *, require_ins: bool) -> bool:
    """True when the INS goes into the documents (rule 28); refuses incomplete traits."""
    for field in ("birth_name", "first_birth_given_name"):
        if not (getattr(patient, field) or "").strip():
            raise DocumentError(f"patient.{field}: missing identity trait (INS rule 32 minimum)")
    if patient.birth_date is None:
        raise DocumentError("patient.birth_date: missing identity trait (INS rule 32 minimum)")
    if patient.sex not in SEX_LABELS:
        raise DocumentError("patient.sex: must be F, M or U (JDV_J143)")
    if patient.status is not IdentityStatus.QUAL:
        if require_ins:
            raise DocumentError(
                f"patient.status: identity is {patient.status.value}, not QUAL; this use needs the INS "
                "(INS rule 28)"
            )
        return False
    # A qualified identity must carry every INS trait (cda-cr-ima.md §3.3, ins.md §9).
    if not (patient.ins_matricule and patient.ins_oid):
        raise DocumentError("patient.ins_matricule: a qualified identity needs its matricule INS and OID")
    if not _MATRICULE.match(patient.ins_matricule):
        raise DocumentError("patient.ins_matricule: must be 13 characters + 2-digit key (ins.md §5)")
    if patient.ins_oid not in INS_OIDS:
        raise DocumentError("patient.ins_oid: not an INS authority OID (.8 NIR, .9 NIA, .10 test, .11 demo)")
    if not (patient.birth_given_names or "").strip():
        raise DocumentError("patient.birth_given_names: required with the INS (CDA given without qualifier)")
    if patient.sex not in ("F", "M"):
        raise DocumentError("patient.sex: a qualified identity is F or M (INSi)")
    if not re.fullmatch(r"(\d{2}|2[AB])\d{3}", patient.birth_place_code or ""):
        raise DocumentError("patient.birth_place_code: the 5-character COG is required with the INS")
    return ins_transmissible(patient)


def _check_exam(bundle: ReportBundle) -> None:
    exam = bundle.exam
    for field in ("order_id", "accession_number", "study_instance_uid", "exam_label"):
        if not (getattr(exam, field) or "").strip():
            raise DocumentError(f"exam.{field}: missing exam data (cda-cr-ima.md §3.4)")
    if not _LOINC.match(exam.exam_code or ""):
        raise DocumentError("exam.exam_code: must be a LOINC code (JDV_CodesDocumentImagerie_CISIS)")
    if exam.modality not in MODALITIES:
        raise DocumentError("exam.modality: not an imaging modality of JDV_ModaliteAcquisition_CISIS")
    if not re.fullmatch(r"[0-2](\.(0|[1-9]\d*))+", exam.study_instance_uid):
        raise DocumentError("exam.study_instance_uid: must be a DICOM UID (digits and dots)")
    if exam.started_at is None:
        raise DocumentError("exam.started_at: missing exam date (serviceEvent/effectiveTime)")


def collect(
    bundle: ReportBundle,
    settings: SiteSettings,
    *,
    created_at: dt.datetime | None = None,
    require_ins: bool = False,
) -> Facts:
    zone = ZoneInfo(settings.timezone)
    version = bundle.version
    if bundle.validator is None:
        raise DocumentError("version.validator_rpps: no known radiologist validated it (RIS.CRR.01)")
    validator = _person(bundle.validator, "validator", rpps_required=True)
    author = _person(bundle.author, "author", rpps_required=True) if bundle.author else validator
    if not (version.body or "").strip():
        raise DocumentError("version.body: the report text is empty")
    if version.version > 1 and bundle.previous is None:
        raise DocumentError("version.previous: a replacement needs the replaced version (RPLC)")
    _check_exam(bundle)
    qualified = _check_identity(bundle.patient, require_ins=require_ins)
    try:
        payload = payload_for(bundle.patient) if qualified else None
    except DatamatrixError as exc:
        raise DocumentError(f"patient: {exc}") from exc
    requester = _person(bundle.requester, "requester", rpps_required=False) if bundle.requester else None
    validated_at = local(version.validated_at, zone)
    exam = bundle.exam
    return Facts(
        document_id=version.document_id,
        set_id=bundle.report.set_id,
        version=version.version,
        previous_document_id=bundle.previous.document_id if bundle.previous else None,
        previous_validated_at=local(bundle.previous.validated_at, zone) if bundle.previous else None,
        title=version.title,
        body=version.body,
        conclusion=version.conclusion or "",
        validated_at=validated_at,
        created_at=local(created_at, zone) if created_at else validated_at,
        validator=validator,
        author=author,
        requester=requester,
        recipients=listed_recipients(bundle),
        patient=bundle.patient,
        exam=exam,
        ins_qualified=qualified,
        datamatrix_payload=payload,
        exam_started_at=local(exam.started_at, zone),
        exam_ended_at=local(exam.ended_at, zone) if exam.ended_at else None,
        modality_label=MODALITIES[exam.modality],
        confidentiality=bundle.report.confidentiality,
    )
