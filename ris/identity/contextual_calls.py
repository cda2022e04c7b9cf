"""Outgoing contextual calls (RIS.DMP.04–05, RIS.AC.01): what opens the patient's record in the DMP web PS,
or a third application (the PACS viewer) on the patient or the report's exam, with the full INS and the
strict traits, as the site's settings map them (`ris.site.call_targets`).

Only a qualified identity lends its INS (INS rule 28): any other status is refused, naming it. A POST call
(the DMP's TD0.9 always) is an HTML form the browser posts at once (`form_page`): the INS and the traits
travel in its body, never in an address, so neither the browser history nor a proxy log keeps them. A GET
call (a PACS whose contract says so) is an address carrying them, returned to the professional who asked
and never logged. The audit trail records who called which target for which patient row (the partner
trace of INS rule 31) when the call is prepared, without the INS or any trait."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Literal, get_args
from urllib.parse import urlencode, urlsplit

from sqlmodel import Session, select

from ris.identity.gate import ins_transmissible
from ris.identity.nir import nature
from ris.identity.partners import record_partner_exchange
from ris.site.call_targets import ContextCalls, ContextDatum
from ris.store import audit
from ris.store.models import Exam, ExchangeChannel, IdentityStatus, Patient, Report

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
    method: Literal["get", "post"]
    action: str  # the target's address, as configured: no datum of the patient in it
    fields: tuple[tuple[str, str], ...]  # health data: for the professional who asked only

    @property
    def url(self) -> str:
        """A GET call's address, its data in the query (health data: for the professional who asked)."""
        if self.method != "get":
            raise ValueError(f"the {self.target} call is a POST: its data never go in an address")
        return f"{self.action}{'&' if '?' in self.action else '?'}{urlencode(self.fields)}"


def form_page(call: ContextCall, nonce: str) -> str:
    """The page that makes a POST call: a form of hidden fields that a script (allowed by `nonce` in the
    page's Content-Security-Policy) posts as soon as the page loads; without scripts, a button does."""
    inputs = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in call.fields
    )
    return f"""<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Appel contextuel</title></head>
<body>
<form method="post" action="{escape(call.action)}" accept-charset="UTF-8">
{inputs}
<noscript><button type="submit">Ouvrir</button></noscript>
</form>
<script nonce="{escape(nonce)}">document.forms[0].submit();</script>
</body>
</html>
"""


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
    """The call for the patient `some_id` names (a report id or an IPP); audited. A datum the subject does
    not have (the exam, when an IPP is given) leaves its parameter out."""
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
    fields = tuple(
        (name, values[datum]) for name, datum in config.parameters.items() if values[datum] is not None
    )
    audit.record(
        session,
        actor=ps_rpps,
        action="context.call",
        object_type="patient",
        object_id=patient.id,
        target=target,
        method=config.method,
        report_id=report.id if report else None,
    )
    # INS rule 31 (RIS.INS.51): the call hands the INS to the target application.
    partner = f"contextual call {target} {urlsplit(config.url).netloc}"
    record_partner_exchange(session, patient, partner, ExchangeChannel.context_call, None)
    return ContextCall(target, config.method, config.url, fields)
