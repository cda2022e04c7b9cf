"""Builders shared by the identity tests."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from ris.identity import verification
from ris.identity.actors import OPERATOR, SUPERUSER, Actor
from ris.identity.insi_client import InsiClient
from ris.identity.insi_result import InsiIdentity, InsRef
from ris.identity.registry import create_identity
from ris.store import db
from ris.store.models import AuditEntry, IdentityStatusChange, Patient

CLERK = Actor("clerk-1", OPERATOR)
SUPER = Actor("super-1", OPERATOR | {SUPERUSER})
READER = Actor("reader-1", frozenset({"identity.write"}))


def adrtrois(session: Session, **kw) -> Patient:
    values = dict(
        birth_name="ADRTROIS",
        first_birth_given_name="DOMINIQUE",
        birth_date=dt.date(1997, 2, 26),
        sex="F",
        birth_place_code="2A020",
    )
    values.update(kw)
    return create_identity(session, CLERK, **values)


def adrtrois_insi(**kw) -> InsiIdentity:
    values = dict(
        ins=InsRef("297022A02077878", "1.2.250.1.213.1.4.8"),
        birth_name="ADRTROIS",
        given_names="DOMINIQUE",
        sex="F",
        birth_date=dt.date(1997, 2, 26),
        birth_place_code="2A020",
    )
    values.update(kw)
    return InsiIdentity(**values)


def audits(session: Session, patient: Patient, action: str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(
        AuditEntry.object_type == "patient", AuditEntry.object_id == str(patient.id)
    )
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(session.exec(stmt.order_by(AuditEntry.id)).all())


def history(session: Session, patient: Patient) -> list[IdentityStatusChange]:
    stmt = select(IdentityStatusChange).where(IdentityStatusChange.patient_id == patient.id)
    return list(session.exec(stmt.order_by(IdentityStatusChange.id)).all())


async def run_verifications(client: InsiClient, db_url: str) -> list[str]:
    """What the identity-verification runs do (tasks.identity_verification), in the test's process: every
    pending verification asked to INSi and settled; their statuses."""
    contract = client.settings.verification
    with db.session_scope(db_url) as s:
        pending = verification.pending(s)
    statuses = []
    for verification_id, _key in pending:
        with db.session_scope(db_url) as s:
            job = verification.begin(s, verification_id)
        call = await client.verify(job.matricule, job.oid, job.query)
        with db.session_scope(db_url) as s:
            statuses.append(verification.settle(s, verification_id, call, contract, last=True))
    return statuses
