"""Rule 17: anteriority search before creating an identity (RIS.INS.07-10)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from ris.identity.actors import Actor
from ris.identity.errors import IdentityRuleError
from ris.identity.lexical import search_key
from ris.identity.nir import check_matricule
from ris.store import audit
from ris.store.models import Patient


def _name_keys(patient: Patient) -> list[str]:
    return [search_key(patient.birth_name), search_key(patient.used_name)]


def _given_keys(patient: Patient) -> list[str]:
    """Every given-name field, and each birth given name of the list, without distinction (RIS.INS.10)."""
    names = [patient.first_birth_given_name, patient.used_given_name, patient.birth_given_names]
    names += (patient.birth_given_names or "").split()
    return [search_key(n) for n in names if n]


def matches(patient: Patient, name: str | None) -> bool:
    """A typed start of name matches the start of the birth or used name, or of any given name."""
    key = search_key(name)
    if not key:
        return True
    return any(k.startswith(key) for k in _name_keys(patient) + _given_keys(patient) if k)


def search_by_traits(
    session: Session, actor: Actor, birth_date: dt.date, name: str | None = None
) -> list[Patient]:
    """By birth date, optionally completed with the first letters of a name or given name."""
    rows = session.exec(select(Patient).where(Patient.birth_date == birth_date).order_by(Patient.id)).all()
    found = [p for p in rows if matches(p, name)]
    _audit(session, actor, "birth_date+name" if name else "birth_date", found)
    return found


def search_by_ins(session: Session, actor: Actor, matricule: str) -> list[Patient]:
    """All 15 characters, and the key verified before anything is searched (RIS.INS.08)."""
    if len(matricule.strip()) != 15:
        raise IdentityRuleError("ins", "type all 15 characters of the matricule INS", "INS rule 17")
    m = check_matricule(matricule, field="ins")
    found = list(session.exec(select(Patient).where(Patient.ins_matricule == m)).all())
    _audit(session, actor, "ins", found)
    return found


def _audit(session: Session, actor: Actor, criteria: str, found: list[Patient]) -> None:
    audit.record(
        session,
        actor=actor.id,
        action="identity.search",
        object_type="patient",
        object_id=",".join(str(p.id) for p in found)[:64] or "-",
        criteria=criteria,
        results=len(found),
    )
