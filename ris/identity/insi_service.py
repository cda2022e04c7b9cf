"""INSi calls on behalf of a user or of the engine: permission (rule 4), blocking (rule 25), and the trace
of every call with its full answer in InsiExchange (rules 37, 39, 48) plus an audit row."""

from __future__ import annotations

from sqlmodel import Session

from ris.identity.actors import INSI_CALL, Actor
from ris.identity.errors import IdentityRuleError
from ris.identity.insi_client import InsiCall, InsiClient, TraitsQuery, VitaleQuery
from ris.identity.insi_result import InsiResult
from ris.identity.lexical import check_name
from ris.identity.registry import verification_failed
from ris.identity.status import insi_blocked
from ris.store import audit
from ris.store.models import InsiExchange, Patient


def traits_of(patient: Patient, given: str | None = None) -> TraitsQuery:
    return TraitsQuery(
        birth_name=patient.birth_name,
        given_names=(given or patient.first_birth_given_name,),
        sex=patient.sex,
        birth_date=patient.birth_date,
        birth_place_code=None,
    )


def _guard(actor: Actor, patient: Patient | None) -> None:
    actor.require(INSI_CALL, "INS rule 4")
    if patient is not None and insi_blocked(patient.attributes):
        raise IdentityRuleError(
            "attributes", "INSi is blocked for a douteuse or fictive identity", "INS rule 25"
        )


def _check_query(query: TraitsQuery) -> None:
    check_name("birth_name", query.birth_name, rule="INSi lexical profile")
    for given in query.given_names:
        check_name("given_names", given, rule="INSi lexical profile")
    if query.sex not in ("M", "F"):
        raise IdentityRuleError("sex", "INSi searches with M or F only", "INSi lexical profile")


def record(session: Session, actor: Actor, call: InsiCall, patient: Patient | None) -> InsiExchange:
    row = InsiExchange(
        patient_id=patient.id if patient else None,
        operation=call.operation,
        request=call.request,
        code_cr=call.result.code if call.result else None,
        response={"xml": call.raw_response, "result": call.result.summary() if call.result else None}
        if call.raw_response
        else None,
        fault=str(call.error)[:500] if call.error else None,
        by=actor.id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor.id,
        action=f"insi.{call.operation}",
        object_type="insi_exchange",
        object_id=row.id,
        patient_id=row.patient_id,
        code_cr=row.code_cr,
        failed=call.error is not None,
    )
    return row


async def search(
    session: Session,
    actor: Actor,
    client: InsiClient,
    *,
    traits: TraitsQuery | None = None,
    vitale: VitaleQuery | None = None,
    patient: Patient | None = None,
    saml_assertion: str | None = None,
) -> InsiResult:
    """Search by traits or by Carte Vitale. The trace is written even when the answer is refused; the
    caller commits it (the error is raised after the row is flushed)."""
    _guard(actor, patient)
    if (traits is None) == (vitale is None):
        raise IdentityRuleError("query", "give either identity traits or Carte Vitale data", "RIS.INS.50")
    if traits is not None:
        _check_query(traits)
        call = await client.search_traits(traits, saml_assertion=saml_assertion)
    else:
        call = await client.search_vitale(vitale, saml_assertion=saml_assertion)
    record(session, actor, call, patient)
    if call.error is not None:
        raise call.error
    return call.result


async def verify(session: Session, actor: Actor, client: InsiClient, patient: Patient) -> bool:
    """Unit verification of the INS held by `patient`; KO invalidates and demotes it (rule 49)."""
    _guard(actor, patient)
    if not patient.ins_matricule or not patient.ins_oid:
        raise IdentityRuleError("ins_matricule", "no INS to verify", "INS rule 48")
    call = await client.verify(patient.ins_matricule, patient.ins_oid, traits_of(patient))
    record(session, actor, call, patient)
    if call.error is not None:
        raise call.error
    ok = client.settings.verification.verdict(call.result.code) == "ok"
    if not ok:
        verification_failed(session, actor, patient, detail=f"INSi verification KO ({call.result.label})")
    return ok
