"""Outgoing contextual calls (RIS.DMP.04–05, RIS.AC.01): the address that opens the patient's record in
the DMP web PS, or a third application (the PACS viewer) on the patient or the report's exam, with the full
INS and the strict traits, as the site's settings map them (`ris.context_settings`).

Only a qualified identity lends its INS (INS rule 28): any other status is refused, naming it. The address
carries health data by design: it is returned to the professional who asked and never logged; the audit
trail records who called which target for which patient row (the partner trace of INS rule 31), without
the INS or any trait."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlencode

from sqlmodel import Session, select

from ris.context_settings import ContextCalls, ContextDatum
from ris.identity.gate import ins_transmissible
from ris.identity.nir import nature
from ris.store import audit
from ris.store.models import Exam, IdentityStatus, Patient, Report

Target = Literal["dmp", "pacs"]
TARGETS: tuple[str, ...] = get_args(Target)
STATUS_NAMES = {
    IdentityStatus.PROV: "identité provisoire",
    IdentityStatus.RECUP: "identité récupérée",
    IdentityStatus.VALI: "identité validée",
    IdentityStatus.QUAL: "identité qualifiée",
}


class ContextCallRefused(ValueError):
    """No call: names the field and the rule."""


@dataclass(frozen=True)
class ContextCall:
    target: str
    url: str  # health data: for the professional who asked only


def _subject(session: Session, some_id: str) -> tuple[Patient, Exam | None, Report | None]:
    """The patient (and the exam) a report id or a patient IPP names."""
    report = session.get(Report, some_id)
    if report is not None:
        exam = session.get(Exam, report.exam_id)
        return session.get(Patient, exam.patient_id), exam, report
    patient = session.exec(select(Patient).where(Patient.ipp == some_id)).first()
    if patient is None:
        raise ContextCallRefused(f"ID {some_id!r}: neither a report id nor a patient IPP")
    return patient, None, None


def _values(
    patient: Patient, exam: Exam | None, report: Report | None, ps_rpps: str, date_format: str
) -> dict[ContextDatum, str | None]:
    return {
        "ins": patient.ins_matricule,
        "ins_oid": patient.ins_oid,
        "ins_nature": nature(patient.ins_oid) if patient.ins_oid else None,
        "birth_name": patient.birth_name,
        "first_birth_given_name": patient.first_birth_given_name,
        "birth_given_names": patient.birth_given_names,
        "birth_date": patient.birth_date.strftime(date_format),
        "sex": patient.sex,
        "birth_place_code": patient.birth_place_code,
        "ipp": patient.ipp,
        "ps_rpps": ps_rpps,
        "accession_number": exam.accession_number if exam else None,
        "study_instance_uid": exam.study_instance_uid if exam else None,
        "report_id": report.id if report else None,
    }


def build(
    session: Session, some_id: str, target: str, settings: ContextCalls, *, ps_rpps: str
) -> ContextCall:
    """The call's address for the patient `some_id` names (a report id or an IPP); audited. A datum the
    subject does not have (the exam, when an IPP is given) leaves its parameter out."""
    if target not in TARGETS:
        raise ContextCallRefused(f"--target {target!r}: one of {', '.join(TARGETS)}")
    config = getattr(settings, target)
    if config.url is None:
        raise ContextCallRefused(
            f"context_calls.{target}.url: not set in the site settings (RIS Site Settings block)"
        )
    patient, exam, report = _subject(session, some_id)
    if patient.status is not IdentityStatus.QUAL:
        raise ContextCallRefused(
            f"ID {some_id}: identity status {patient.status.value} ({STATUS_NAMES[patient.status]}): a "
            "contextual call carries the INS of an identité qualifiée only (INS rule 28)"
        )
    if not ins_transmissible(patient):
        raise ContextCallRefused(
            f"ID {some_id}: qualified identity without matricule INS and OID (INS rule 28)"
        )
    values = _values(patient, exam, report, ps_rpps, config.date_format)
    query = {name: values[datum] for name, datum in config.parameters.items() if values[datum] is not None}
    separator = "&" if "?" in config.url else "?"
    audit.record(
        session,
        actor=ps_rpps,
        action="context.call",
        object_type="patient",
        object_id=patient.id,
        target=target,
        report_id=report.id if report else None,
    )
    return ContextCall(target, f"{config.url}{separator}{urlencode(query)}")
