"""The identity référentiel: create, read, edit, validate, INSi import, downgrade (ins.md §2-§4).

Every change writes an audit row (rule 16) and every status change a history row (rule 21). Functions
flush but never commit: the caller's unit of work decides, so a refused change leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlmodel import Session, select

from ris.identity import gate, propagation
from ris.identity.actors import IDENTITY_WRITE, INS_READ, SUPERUSER, Actor
from ris.identity.errors import IdentityRuleError
from ris.identity.insi_result import InsiIdentity
from ris.identity.lexical import check_name
from ris.identity.nir import check_matricule, nature
from ris.identity.propagation import Change
from ris.identity.status import (
    ATTRIBUTES,
    COMPLEMENTARY_TRAITS,
    STRICT_TRAITS,
    after_strict_trait_change,
    earned_status,
    holds_insi_traits,
    insi_blocked,
)
from ris.site.justificatifs import JustificatifPolicy
from ris.store import audit
from ris.store.models import (
    IdentityStatus,
    IdentityStatusChange,
    Patient,
    WorklistItem,
    utcnow,
)

MANDATORY = ("birth_name", "first_birth_given_name", "birth_date", "sex", "birth_place_code")
SEXES = ("M", "F", "U")
# PAM-FR events that carry an identity change downstream (rule 27, Ségur proof: A31, and A47 for the INS).
PROPAGATE_TRAITS = "A31"
PROPAGATE_INS = "A47"


class NotFound(LookupError):
    pass


def _propagated(session: Session, change: Change) -> Change:
    """Rule 27: the PAM-FR events go to the outbox in the caller's unit of work (same commit or none)."""
    propagation.enqueue(session, change)
    return change


# --- validation of captured values ---------------------------------------------------------------------


def _check_sex(value: Any, rule: str) -> str:
    if value is None or not str(value).strip():
        raise IdentityRuleError("sex", "must not be empty", rule)
    if value not in SEXES:
        raise IdentityRuleError("sex", "must be M, F or U", rule)
    return value


def _check_birth_date(value: Any, rule: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as exc:
            raise IdentityRuleError(
                "birth_date", "must be a calendar date AAAA-MM-JJ, day 01-31 and month 01-12", rule
            ) from exc
    return value


def _check_place(value: Any, rule: str) -> str:
    if value is None or not str(value).strip():
        raise IdentityRuleError("birth_place_code", "must not be empty (99999 when unknown)", rule)
    text = str(value).upper()
    if len(text) != 5 or not text.isalnum():
        raise IdentityRuleError(
            "birth_place_code", "must be a 5-character INSEE COG code (99999 if unknown)", rule
        )
    return text


def _check_given_names(value: str | None, rule: str) -> str | None:
    if value is None or not value.strip():
        return None
    for token in value.split(" "):
        check_name("birth_given_names", token, rule=rule)
    return value


def _validated(fieldname: str, value: Any, rule: str = "INS rule 1") -> Any:
    if fieldname == "birth_name":
        return check_name("birth_name", value, rule=rule)
    if fieldname == "first_birth_given_name":
        return check_name("first_birth_given_name", value, rule=rule)
    if fieldname == "birth_given_names":
        return _check_given_names(value, rule)
    if fieldname in ("used_name", "used_given_name"):
        return check_name(fieldname, value, required=False)
    if fieldname == "birth_date":
        return _check_birth_date(value, rule)
    if fieldname == "sex":
        return _check_sex(value, rule)
    if fieldname == "birth_place_code":
        return _check_place(value, rule)
    return value


# --- history and audit -----------------------------------------------------------------------------------


def set_status(
    session: Session, patient: Patient, new: IdentityStatus, reason: str, by: str, *, initial: bool = False
) -> None:
    """Rule 21: previous status, when, who; plus the audit row of rule 16."""
    previous = None if initial else patient.status
    patient.status = new
    patient.updated_at = utcnow()
    session.add(patient)
    session.flush()
    session.add(IdentityStatusChange(patient_id=patient.id, previous=previous, new=new, reason=reason, by=by))
    audit.record(
        session,
        actor=by,
        action="identity.status",
        object_type="patient",
        object_id=patient.id,
        previous=previous.value if previous else None,
        new=new.value,
        reason=reason,
    )


def _audit_change(session: Session, patient: Patient, by: str, action: str, changed: dict) -> None:
    audit.record(
        session,
        actor=by,
        action=action,
        object_type="patient",
        object_id=patient.id,
        fields={k: [_plain(old), _plain(new)] for k, (old, new) in changed.items()},
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _drop_ins(patient: Patient, changed: dict) -> None:
    """Rule 27: matricule and OID are invalidated together (the schema keeps them paired)."""
    if patient.ins_matricule or patient.ins_oid:
        changed["ins_matricule"] = (patient.ins_matricule, None)
        changed["ins_oid"] = (patient.ins_oid, None)
    patient.ins_matricule = None
    patient.ins_oid = None


# --- operations ------------------------------------------------------------------------------------------


def create_identity(
    session: Session,
    actor: Actor,
    *,
    birth_name: str | None,
    first_birth_given_name: str | None,
    birth_date: dt.date | str | None,
    sex: str | None,
    birth_place_code: str | None,
    ipp: str | None = None,
    **optional: Any,
) -> Patient:
    """Rule 5: exactly these five traits are mandatory; status PROV (rule 20), history and audit."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    rule = "INS rule 5"
    values = dict(
        birth_name=birth_name,
        first_birth_given_name=first_birth_given_name,
        birth_date=birth_date,
        sex=sex,
        birth_place_code=birth_place_code,
    )
    for name in MANDATORY:
        if values[name] is None or (isinstance(values[name], str) and not values[name].strip()):
            raise IdentityRuleError(name, "is required to create an identity", rule)
    allowed = set(COMPLEMENTARY_TRAITS) | {"birth_given_names", "collection_mode", "source_domain"}
    unknown = set(optional) - allowed
    if unknown:
        raise IdentityRuleError(sorted(unknown)[0], "cannot be set when creating an identity", rule)
    clean = {k: _validated(k, v, rule) for k, v in {**values, **optional}.items()}
    if ipp is not None and session.exec(select(Patient).where(Patient.ipp == ipp)).first():
        raise IdentityRuleError("ipp", f"{ipp!r} already exists", "IPP uniqueness")
    patient = Patient(ipp=ipp or f"P{uuid.uuid4().hex[:12].upper()}", status=IdentityStatus.PROV, **clean)
    session.add(patient)
    session.flush()
    audit.record(
        session,
        actor=actor.id,
        action="identity.create",
        object_type="patient",
        object_id=patient.id,
        fields=sorted(k for k, v in clean.items() if v is not None),
    )
    set_status(session, patient, IdentityStatus.PROV, "creation", actor.id, initial=True)
    return patient


def get_patient(session: Session, ipp: str) -> Patient:
    patient = session.exec(select(Patient).where(Patient.ipp == ipp)).first()
    if patient is None:
        raise NotFound(f"no identity with IPP {ipp!r}")
    return patient


def identity_view(session: Session, actor: Actor, patient: Patient) -> dict[str, Any]:
    """What a reader sees: the INS only with `ins.read`; every access is audited (rules 4, 16)."""
    shows_ins = actor.can(INS_READ) and patient.ins_matricule is not None
    view = {
        "ipp": patient.ipp,
        "status": patient.status.value,
        "birth_name": patient.birth_name,
        "birth_given_names": patient.birth_given_names,
        "first_birth_given_name": patient.first_birth_given_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "birth_place_code": patient.birth_place_code,
        "used_name": patient.used_name,
        "used_given_name": patient.used_given_name,
        "attributes": list(patient.attributes or []),
        "justificatif": patient.justificatif_kind,
        "ins_matricule": patient.ins_matricule if shows_ins else None,
        "ins_oid": patient.ins_oid if shows_ins else None,
        "ins_nature": nature(patient.ins_oid) if shows_ins and patient.ins_oid else None,
        "ins_transmissible": gate.ins_transmissible(patient),
        "read_only": list(STRICT_TRAITS) if holds_insi_traits(patient.status) else [],
    }
    if patient.ins_matricule is not None and not shows_ins:
        view["ins_matricule"] = "(hidden: permission ins.read required)"
    audit.record(
        session,
        actor=actor.id,
        action="ins.read" if shows_ins else "identity.read",
        object_type="patient",
        object_id=patient.id,
    )
    return view


def edit_identity(
    session: Session, actor: Actor, patient: Patient, changes: dict[str, Any], *, reason: str = "edit"
) -> Change:
    """Rules 26-27: strict traits of RECUP/QUAL are read-only except for a super-user; when a super-user
    changes one, matricule and OID are dropped and the status is downgraded (RECUP->PROV, QUAL->VALI)."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    for name in changes:
        if name in ("ins_matricule", "ins_oid"):
            raise IdentityRuleError(name, "is filled from INSi only", "INS rule 6")
        if name not in STRICT_TRAITS and name not in COMPLEMENTARY_TRAITS:
            raise IdentityRuleError(name, "is not an editable identity field", "INS rule 1")
    clean = {k: _validated(k, v) for k, v in changes.items()}
    if "first_birth_given_name" in clean and clean["first_birth_given_name"] is None:
        raise IdentityRuleError("first_birth_given_name", "must not be empty", "INS rule 5")
    strict = [k for k, v in clean.items() if k in STRICT_TRAITS and getattr(patient, k) != v]
    if strict and holds_insi_traits(patient.status) and not actor.can(SUPERUSER):
        raise IdentityRuleError(
            strict[0],
            f"is read-only on a {patient.status.value} identity (super-user permission required)",
            "INS rule 26",
        )
    change = Change(patient)
    for k, v in clean.items():
        if getattr(patient, k) != v:
            change.changed[k] = (getattr(patient, k), v)
            setattr(patient, k, v)
    if not change.changed:
        return change
    if strict and holds_insi_traits(patient.status):
        _drop_ins(patient, change.changed)
        lower = after_strict_trait_change(patient.status)
        set_status(
            session, patient, lower, f"strict trait changed: {', '.join(strict)} (INS rule 27)", actor.id
        )
        change.propagate = [PROPAGATE_TRAITS, PROPAGATE_INS]
    elif change.changed:
        change.propagate = [PROPAGATE_TRAITS]
    patient.updated_at = utcnow()
    session.add(patient)
    _audit_change(session, patient, actor.id, "identity.edit", change.changed)
    session.flush()
    return _propagated(session, change)


def set_attributes(
    session: Session, actor: Actor, patient: Patient, attributes: list[str], *, reason: str = "attributes"
) -> Change:
    """Rule 25: douteuse or fictive demote to PROV and invalidate the INS (rule 27); INSi is then blocked."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    unknown = set(attributes) - ATTRIBUTES
    if unknown:
        raise IdentityRuleError(
            "attributes", f"{sorted(unknown)[0]!r} is not one of douteuse, fictive, homonyme", "INS rule 25"
        )
    change = Change(patient)
    new = sorted(set(attributes))
    if new == sorted(patient.attributes or []):
        return change
    change.changed["attributes"] = (list(patient.attributes or []), new)
    patient.attributes = new
    if insi_blocked(new):
        had_ins = patient.ins_matricule is not None
        _drop_ins(patient, change.changed)
        if patient.status is not IdentityStatus.PROV:
            set_status(
                session,
                patient,
                IdentityStatus.PROV,
                "identity marked douteuse/fictive (INS rule 25)",
                actor.id,
            )
        change.propagate = [PROPAGATE_TRAITS] + ([PROPAGATE_INS] if had_ins else [])
    session.add(patient)
    _audit_change(session, patient, actor.id, "identity.attributes", change.changed)
    session.flush()
    return _propagated(session, change)


def record_justificatif(
    session: Session, actor: Actor, patient: Patient, code: str, policy: JustificatifPolicy
) -> Change:
    """Rule 19: record the proof from the site catalogue; validate at once only when the site enabled it."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    proof = policy.find(code)
    if proof is None:
        raise IdentityRuleError("justificatif", f"{code!r} is not in the site catalogue", "INS rule 19")
    change = Change(patient)
    change.changed["justificatif_kind"] = (patient.justificatif_kind, proof.code)
    patient.justificatif_kind = proof.code
    patient.justificatif_high_confidence = proof.high_confidence
    session.add(patient)
    _audit_change(session, patient, actor.id, "identity.justificatif", change.changed)
    session.flush()
    if proof.high_confidence and policy.auto_validate:  # validate_identity enqueues its own A31
        validated = validate_identity(session, actor, patient, reason="automatic on high-confidence proof")
        change.changed.update(validated.changed)
        change.propagate = validated.propagate
    return change


def validate_identity(session: Session, actor: Actor, patient: Patient, *, reason: str = "manual") -> Change:
    """Rules 19-20: checked against a high-confidence proof, the identity becomes VALI (QUAL if from INSi)."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    if insi_blocked(patient.attributes):
        raise IdentityRuleError(
            "attributes", "a douteuse or fictive identity cannot be validated", "INS rule 25"
        )
    if not patient.justificatif_high_confidence:
        raise IdentityRuleError(
            "justificatif", "validation needs a high-confidence proof recorded first", "INS rule 19"
        )
    new = earned_status(from_insi=holds_insi_traits(patient.status), high_confidence_checked=True)
    change = Change(patient)
    if new is not patient.status:
        change.changed["status"] = (patient.status.value, new.value)
        set_status(session, patient, new, f"identity validated ({reason})", actor.id)
        change.propagate = [PROPAGATE_TRAITS]
    return _propagated(session, change)


def apply_insi_identity(
    session: Session,
    actor: Actor,
    patient: Patient,
    found: InsiIdentity,
    *,
    confirm_first_name: bool = False,
) -> Change:
    """Rule 6: after the user accepted a CR 00, INSi overwrites matricule, OID and the strict traits; status
    RECUP, or QUAL when a high-confidence proof was checked (rule 20). When the user's 1er prénom is not the
    head of the INSi list, nothing changes until the user confirms it (consistency alert of rule 6)."""
    actor.require(IDENTITY_WRITE, "INS rule 4")
    if insi_blocked(patient.attributes):
        raise IdentityRuleError(
            "attributes", "a douteuse or fictive identity takes nothing from INSi", "INS rule 25"
        )
    matricule = check_matricule(found.ins.matricule) if not found.key_warning else found.ins.matricule
    nature(found.ins.oid)
    first = found.first_given_name
    if patient.first_birth_given_name != first and not confirm_first_name:
        raise IdentityRuleError(
            "first_birth_given_name",
            f"the 1er prénom typed ({patient.first_birth_given_name}) is not the first INSi birth given name "
            f"({first}); confirm to replace it",
            "INS rule 6",
        )
    values = {
        "ins_matricule": matricule,
        "ins_oid": found.ins.oid,
        "birth_name": found.birth_name,
        "birth_given_names": found.given_names,
        "first_birth_given_name": first,
        "birth_date": found.birth_date,
        "sex": found.sex,
        "birth_place_code": found.birth_place_code or patient.birth_place_code,
        "collection_mode": "INSI",
    }
    change = Change(patient)
    if patient.first_birth_given_name != first:
        change.alerts.append("1er prénom de naissance replaced by the head of the INSi list (INS rule 6)")
    for k, v in values.items():
        if getattr(patient, k) != v:
            change.changed[k] = (getattr(patient, k), v)
            setattr(patient, k, v)
    session.add(patient)
    _audit_change(session, patient, actor.id, "identity.insi_import", change.changed)
    new = earned_status(from_insi=True, high_confidence_checked=patient.justificatif_high_confidence)
    if new is not patient.status:
        set_status(session, patient, new, "INSi identity accepted (INS rules 6, 20)", actor.id)
    change.propagate = [PROPAGATE_TRAITS, PROPAGATE_INS]
    session.flush()
    return _propagated(session, change)


def verification_failed(session: Session, actor: Actor, patient: Patient, *, detail: str) -> Change:
    """Rule 49: a KO verification of a held INS invalidates it and demotes the identity (Ségur scenario:
    qualifiée -> provisoire); a person must look at it (worklist)."""
    change = Change(patient)
    had_ins = patient.ins_matricule is not None
    _drop_ins(patient, change.changed)
    if patient.status is not IdentityStatus.PROV:
        set_status(session, patient, IdentityStatus.PROV, "INSi verification KO (INS rule 49)", actor.id)
    session.add(patient)
    _audit_change(session, patient, actor.id, "identity.verification_ko", change.changed)
    open_worklist(session, "insi-verification-ko", patient, detail)
    change.propagate = [PROPAGATE_TRAITS] + ([PROPAGATE_INS] if had_ins else [])
    session.flush()
    return _propagated(session, change)


def open_worklist(
    session: Session,
    kind: str,
    patient: Patient,
    reason: str,
    *,
    source: str | None = None,
    inbound_message_id: int | None = None,
    verification_id: int | None = None,
) -> WorklistItem:
    """Rule 55: a person must look at this patient's identity; `source` says what raised it (ids only)."""
    item = WorklistItem(
        kind=kind,
        object_type="patient",
        object_id=str(patient.id),
        reason=reason[:500],
        source=source[:200] if source else None,
        inbound_message_id=inbound_message_id,
        verification_id=verification_id,
    )
    session.add(item)
    return item
