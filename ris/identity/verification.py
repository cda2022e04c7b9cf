"""Automatic INSi verification of an INS received from another identification domain (rules 30, 51, 52,
55, 48/53; RIS.INS.38-39, .46-.48).

The PAM-FR listener stores and acknowledges a message as it always did; what the message says about a
foreign INS is kept apart, in an InsVerification row written in the unit of work that applies the
message (`request`): an unknown patient is created without the INS (PROV), a known one is left as it is.
Then one verification per row (a flow run, started after the ACK) calls INSi with the site's certificate:
- OK: the INS is kept with the traits INSi returned (rule 6) and the status *récupérée* (RECUP), or
  *qualifiée* for a trusted sender of a site that does not care for the patient directly (rule 30); a
  known identity also takes the message's other traits (it was left untouched until now), and the change
  goes downstream (rule 27);
- KO: the INS is not kept, a known identity is not updated (rule 51), a worklist item says why (rule 55);
- INSi unavailable: tried again with back-off (`settle` says "retry"), then a worklist item; a SOAP fault
  or an unreadable answer: a worklist item at once.
Every call and its answer are traced (InsiExchange and the audit trail, actor `engine`: automatic).
A run applies its row once: a second run for the same row (a resend, a retry) finds it settled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from ris.identity import insi_service, propagation
from ris.identity.actors import ENGINE
from ris.identity.insi_client import InsiCall, InsiFault, InsiUnavailable, TraitsQuery
from ris.identity.insi_result import InsiIdentity
from ris.identity.propagation import Change
from ris.identity.registry import PROPAGATE_INS, PROPAGATE_TRAITS, open_worklist, set_status
from ris.identity.status import earned_status, insi_blocked
from ris.site.insi_verification import VerificationContract
from ris.store import audit
from ris.store.models import IdentityStatus, InsVerification, Patient, VerificationStatus, utcnow

# What the message said that the verification keeps (PamIdentity fields; dates as ISO text).
SNAPSHOT = (
    "birth_name",
    "first_birth_given_name",
    "birth_given_names",
    "used_name",
    "used_given_name",
    "birth_date",
    "sex",
    "birth_place_code",
    "ipp",
)
COMPLEMENTARY = ("used_name", "used_given_name")
RETRY = "retry"  # settle's answer when INSi was unavailable and Prefect will try again


@dataclass(frozen=True)
class Job:
    """What one attempt needs to call INSi: ids and the query, nothing else."""

    verification_id: int
    round: int
    attempt: int
    matricule: str
    oid: str
    query: TraitsQuery


def request(
    session: Session,
    patient: Patient,
    traits: dict[str, Any],
    *,
    matricule: str,
    oid: str,
    inbound_message_id: int,
    source: str,
    update_known: bool,
    qualify: bool,
) -> InsVerification:
    """Keep a received INS apart until INSi verifies it; one row per identity and received message."""
    row = session.exec(
        select(InsVerification).where(
            InsVerification.patient_id == patient.id,
            InsVerification.inbound_message_id == inbound_message_id,
        )
    ).first()
    if row is not None:
        return row
    snapshot = {
        k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in traits.items() if k in SNAPSHOT
    }
    row = InsVerification(
        patient_id=patient.id,
        inbound_message_id=inbound_message_id,
        matricule=matricule,
        oid=oid,
        traits=snapshot,
        source=source[:200],
        update_known=update_known,
        qualify=qualify,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=ENGINE.id,
        action="identity.verification_requested",
        object_type="patient",
        object_id=patient.id,
        verification=row.id,
        message=row.source,
    )
    return row


def run_key(row: InsVerification) -> str:
    """The idempotency key of a row's verification run, one per round: its id and its creation instant
    (an id alone repeats across databases served by one Prefect server)."""
    return f"identity-verification-{row.id}-{row.created_at:%Y%m%d%H%M%S%f}-r{row.round}"


def pending(session: Session) -> list[tuple[int, str]]:
    """(id, run key) of every verification still waiting for INSi: their runs are started (again: the
    start is idempotent) when a listener starts."""
    rows = session.exec(
        select(InsVerification)
        .where(InsVerification.status == VerificationStatus.pending)
        .order_by(InsVerification.id)
    ).all()
    return [(row.id, run_key(row)) for row in rows]


def _query(row: InsVerification) -> TraitsQuery:
    t = row.traits
    return TraitsQuery(
        birth_name=t.get("birth_name") or "",
        given_names=(t.get("first_birth_given_name") or "",),
        sex=t.get("sex") or "",
        birth_date=dt.date.fromisoformat(t["birth_date"]),
        birth_place_code=t.get("birth_place_code"),
    )


def begin(session: Session, verification_id: int) -> Job | None:
    """The attempt to make, counted; None when there is nothing to ask INSi: the row was settled by an
    earlier run, or the identity became douteuse / fictive meanwhile (rule 25: INSi is blocked)."""
    row = session.get(InsVerification, verification_id, with_for_update=True)
    if row is None or row.status is not VerificationStatus.pending:
        return None
    patient = session.get(Patient, row.patient_id)
    if insi_blocked(patient.attributes):
        _close(
            session,
            row,
            patient,
            VerificationStatus.failed,
            "identity douteuse or fictive: INSi blocked (INS rule 25)",
            kind="insi-verification-failed",
        )
        return None
    row.attempts += 1
    row.updated_at = utcnow()
    session.add(row)
    return Job(row.id, row.round, row.attempts, row.matricule, row.oid, _query(row))


def settle(
    session: Session, verification_id: int, call: InsiCall, contract: VerificationContract, *, last: bool
) -> str:
    """Trace the call, then apply its answer; returns the row's status, or RETRY when INSi was unavailable
    and another attempt will come (`last` false). A row settled meanwhile by another run stays as it is
    (the call is still traced)."""
    row = session.get(InsVerification, verification_id, with_for_update=True)
    patient = session.get(Patient, row.patient_id, with_for_update=True)
    insi_service.record(session, ENGINE, call, patient)  # rules 48 / 53: every call and its answer
    if row.status is not VerificationStatus.pending:
        return row.status.value
    if isinstance(call.error, InsiUnavailable):
        if not last:
            row.outcome = str(call.error)[:500]
            session.add(row)
            return RETRY
        return _close(
            session,
            row,
            patient,
            VerificationStatus.failed,
            f"{call.error} (after {row.attempts} attempts)",
            kind="insi-verification-unavailable",
        )
    if call.error is not None:
        what = "INSi refused the call" if isinstance(call.error, InsiFault) else "INSi answer not usable"
        return _close(
            session,
            row,
            patient,
            VerificationStatus.failed,
            f"{what}: {call.error}",
            kind="insi-verification-failed",
        )
    verdict = contract.verdict(call.result.code)
    if verdict == "ok":
        return _accept(session, row, patient, call.result.identity)
    if verdict == "ko":
        return _close(
            session,
            row,
            patient,
            VerificationStatus.refused,
            f"INSi verification KO ({call.result.code} {call.result.label}): the INS received is not kept, "
            "the identity is not updated (INS rules 51, 55)",
            kind="insi-verification-ko",
        )
    return _close(  # a code the site's contract does not name is never taken for an OK
        session,
        row,
        patient,
        VerificationStatus.failed,
        f"INSi answer not usable: CodeCR {call.result.code!r} is neither OK nor KO in the site's contract",
        kind="insi-verification-failed",
    )


def give_up(session: Session, verification_id: int, reason: str) -> str:
    """INSi cannot be asked at all (no endpoint saved, no usable certificate): a person must look at it."""
    row = session.get(InsVerification, verification_id, with_for_update=True)
    if row.status is not VerificationStatus.pending:
        return row.status.value
    patient = session.get(Patient, row.patient_id)
    return _close(session, row, patient, VerificationStatus.failed, reason, kind="insi-verification-failed")


def _close(
    session: Session,
    row: InsVerification,
    patient: Patient,
    status: VerificationStatus,
    reason: str,
    *,
    kind: str,
) -> str:
    row.status, row.outcome, row.updated_at = status, reason[:500], utcnow()
    session.add(row)
    open_worklist(
        session,
        kind,
        patient,
        reason,
        source=row.source,
        inbound_message_id=row.inbound_message_id,
        verification_id=row.id,
    )
    _audit(session, row, patient)
    return status.value


def _audit(session: Session, row: InsVerification, patient: Patient) -> None:
    audit.record(
        session,
        actor=ENGINE.id,
        action="identity.verification",
        object_type="patient",
        object_id=patient.id,
        verification=row.id,
        outcome=row.status.value,
        attempts=row.attempts,
        message=row.source,
    )


def _holder(session: Session, patient: Patient, matricule: str) -> Patient | None:
    """Another identity that holds this INS already (a possible duplicate: a person decides)."""
    return session.exec(
        select(Patient).where(Patient.ins_matricule == matricule, Patient.id != patient.id)
    ).first()


def _accept(session: Session, row: InsVerification, patient: Patient, found: InsiIdentity | None) -> str:
    matricule = found.ins.matricule if found else row.matricule
    oid = found.ins.oid if found else row.oid
    if insi_blocked(patient.attributes):
        return _close(
            session,
            row,
            patient,
            VerificationStatus.failed,
            "identity douteuse or fictive: the INS verified is not kept (INS rule 25)",
            kind="insi-verification-failed",
        )
    if (holder := _holder(session, patient, matricule)) is not None:
        return _close(
            session,
            row,
            patient,
            VerificationStatus.conflict,
            f"INSi OK, but identity {holder.ipp} holds this INS already: possible duplicate, INS not kept",
            kind="identity-conflict",
        )
    if patient.ins_matricule and patient.ins_matricule != matricule:
        return _close(
            session,
            row,
            patient,
            VerificationStatus.conflict,
            "INSi OK, but this identity holds another INS: INS not kept",
            kind="identity-conflict",
        )
    change = Change(patient)
    for name, value in _values(row, patient, found, matricule, oid).items():
        if getattr(patient, name) != value:
            change.changed[name] = (getattr(patient, name), value)
            setattr(patient, name, value)
    patient.updated_at = utcnow()
    session.add(patient)
    if change.changed:
        audit.record(
            session,
            actor=ENGINE.id,
            action="identity.edit",
            object_type="patient",
            object_id=patient.id,
            fields={k: [_plain(a), _plain(b)] for k, (a, b) in change.changed.items()},
            message=row.source,
            verification=row.id,
        )
    checked = patient.justificatif_high_confidence
    status = (
        IdentityStatus.QUAL if row.qualify else earned_status(from_insi=True, high_confidence_checked=checked)
    )
    if status is not patient.status:
        set_status(
            session, patient, status, f"INSi verification OK (INS rules 30, 52): {row.source}", ENGINE.id
        )
    row.status, row.updated_at = VerificationStatus.verified, utcnow()
    row.outcome = "INSi verification OK: INS kept" + (" with the traits INSi returned" if found else "")
    session.add(row)
    session.flush()
    if row.update_known:  # a known identity changed by another domain's message goes downstream (rule 27)
        change.propagate = [PROPAGATE_TRAITS, PROPAGATE_INS]
        propagation.enqueue(session, change)
    _audit(session, row, patient)
    return row.status.value


def _values(
    row: InsVerification, patient: Patient, found: InsiIdentity | None, matricule: str, oid: str
) -> dict[str, Any]:
    """What the identity takes: the INS, the strict traits INSi returned (rule 6) or, without them, the
    message's (INSi just confirmed them); a known identity also the message's complementary traits."""
    t = row.traits
    values: dict[str, Any] = {"ins_matricule": matricule, "ins_oid": oid}
    if found is not None:
        values.update(
            birth_name=found.birth_name,
            birth_given_names=found.given_names,
            first_birth_given_name=found.first_given_name,
            birth_date=found.birth_date,
            sex=found.sex,
            birth_place_code=found.birth_place_code or patient.birth_place_code,
        )
    elif row.update_known:
        values.update(
            birth_name=t.get("birth_name") or patient.birth_name,
            birth_given_names=t.get("birth_given_names") or patient.birth_given_names,
            first_birth_given_name=t.get("first_birth_given_name") or patient.first_birth_given_name,
            birth_date=dt.date.fromisoformat(t["birth_date"]) if t.get("birth_date") else patient.birth_date,
            sex=t.get("sex") or patient.sex,
            birth_place_code=t.get("birth_place_code") or patient.birth_place_code,
        )
    if row.update_known:
        values.update({k: t[k] for k in COMPLEMENTARY if t.get(k) is not None})
    return values


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def status_of(session: Session, verification_id: int) -> str:
    return session.get(InsVerification, verification_id).status.value
