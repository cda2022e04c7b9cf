"""Outbound PAM-FR identity feed (INS rule 27, RIS.INS.34 / 36: « DOIT propager les modifications »).

A registry change whose `propagate` lists A31 / A47 is written to the outbox (`OutboundMessage`) in the
caller's unit of work: a rolled-back change leaves no message, a committed one is never lost. Each row
keeps the identity as the change left it and an MSH-10 minted once; the ER7 is rendered from that
snapshot at the first attempt (with the site's header values) and frozen, so a retry resends the same
bytes. ins.md §8.2: PID-3 carries the INS only for a qualified identity (rule 28); an A47 names the
identifier list the receiver knew in MRG-1 (INS added, changed or removed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message, Segment
from hl7apy.parser import parse_message, parse_segment
from sqlmodel import Session, select

from ris.hl7v2.control_id import new_control_id
from ris.hl7v2.datatypes import dtm
from ris.hl7v2.er7 import escape
from ris.hl7v2.msh import build_msh
from ris.identity.gate import ins_transmissible
from ris.identity.partners import record_partner_exchange
from ris.identity.pid_segment import ins_cx, pid_values
from ris.site.settings import SiteSettings
from ris.store import audit
from ris.store.models import (
    Channel,
    IdentityStatus,
    OutboundMessage,
    OutboundStatus,
    Patient,
    WorklistItem,
    utcnow,
)

DESTINATIONS = ("pfi",)
# event -> (MSH-9, hl7apy structure)
EVENTS = {"A31": ("ADT^A31^ADT_A05", "ADT_A05"), "A47": ("ADT^A47^ADT_A30", "ADT_A30")}
VERSION = "2.5^FRA^2.11"  # MSH-12, PAM-FR 2.11
PROFILE = "2.11^IHE_FRANCE-2.11-PAM"  # MSH-21
LANGUAGE = "FR"  # MSH-19
SNAPSHOT_TRAITS = (
    "ipp",
    "birth_name",
    "birth_given_names",
    "first_birth_given_name",
    "sex",
    "birth_place_code",
    "used_name",
    "used_given_name",
    "street",
    "postal_code",
    "city",
)


class PropagationError(ValueError):
    """A change or an outbox row the feed cannot turn into a message; the text names the field and rule."""


def transmitted_ins(patient: Patient) -> tuple[str, str] | None:
    """The INS as downstream systems may see it: only a qualified identity lends it (rule 28)."""
    return (patient.ins_matricule, patient.ins_oid) if ins_transmissible(patient) else None


def snapshot(patient: Patient, prior_ins: tuple[str, str] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {k: getattr(patient, k) for k in SNAPSHOT_TRAITS}
    values.update(
        status=patient.status.value,
        birth_date=patient.birth_date.isoformat(),
        attributes=list(patient.attributes or []),
        ins=list(ins) if (ins := transmitted_ins(patient)) else None,
        prior_ins=list(prior_ins) if prior_ins else None,
    )
    return values


@dataclass
class Change:
    """What a change did, for the caller to show and to propagate (rule 27). Made before the patient is
    touched, so `prior_ins` is the INS downstream systems knew (qualified only, rule 28): an A47 names it."""

    patient: Patient
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    propagate: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    prior_ins: tuple[str, str] | None = field(init=False)

    def __post_init__(self) -> None:
        self.prior_ins = transmitted_ins(self.patient)


def enqueue(session: Session, change: Change) -> list[OutboundMessage]:
    """Outbox rows for every destination and every event of `change.propagate`, in that order. The A47 is
    left out when the identifier list downstream systems know does not change (an INS that never left,
    e.g. RECUP, rule 28). Flushes, never commits."""
    unknown = [e for e in change.propagate if e not in EVENTS]
    if unknown:
        raise PropagationError(f"propagate: {unknown[0]!r} is not an outbound PAM-FR event (A31, A47)")
    patient = change.patient
    now_ins = transmitted_ins(patient)
    rows = []
    for destination in DESTINATIONS:
        for event in dict.fromkeys(change.propagate):
            if event == "A47" and now_ins == change.prior_ins:
                continue
            prior = change.prior_ins if event == "A47" else None
            rows.append(
                OutboundMessage(
                    destination=destination,
                    message_type=EVENTS[event][0],
                    control_id=new_control_id(VERSION),
                    patient_id=patient.id,
                    snapshot=snapshot(patient, prior),
                )
            )
    session.add_all(rows)
    session.flush()
    if rows:
        audit.record(
            session,
            actor="engine",
            action="identity.propagate",
            object_type="patient",
            object_id=patient.id,
            messages=[[r.id, r.destination, r.message_type, r.control_id] for r in rows],
        )
    return rows


# --- rendering ---------------------------------------------------------------------------------------------


def _patient(snap: dict[str, Any]) -> Patient:
    """A detached Patient holding the snapshot, so that outbound ORU/MDM and ADT share one PID mapping."""
    ins = snap.get("ins") or (None, None)
    return Patient(
        **{k: snap.get(k) for k in SNAPSHOT_TRAITS},
        birth_date=dt.date.fromisoformat(snap["birth_date"]),
        status=IdentityStatus(snap["status"]),
        attributes=snap.get("attributes") or [],
        ins_matricule=ins[0],
        ins_oid=ins[1],
    )


def _set(segment: Segment, field: str, values: list[str]) -> None:
    setattr(segment, field, values[0])
    for value in values[1:]:
        segment.add_field(field).value = value


def render(row: OutboundMessage, settings: SiteSettings, *, now: dt.datetime | None = None) -> str:
    """The ER7 of an outbox row (segments separated by CR), checked with hl7apy v2.5 STRICT."""
    event = row.message_type.split("^")[1] if row.message_type.count("^") == 2 else ""
    if event not in EVENTS or EVENTS[event][0] != row.message_type:
        raise PropagationError(f"message_type: {row.message_type!r} is not an outbound PAM-FR event")
    site, routing_, tz = settings.facility, settings.hl7, settings.timezone
    patient = _patient(row.snapshot)
    message = Message(EVENTS[event][1], version="2.5", validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = build_msh(
        sending_application=escape(routing_.sending_application),
        sending_facility=site.finess_geo,
        receiving_application=escape(routing_.receiving_application),
        receiving_facility=escape(routing_.receiving_facility),
        when=now or utcnow(),
        tz=tz,
        message_type=row.message_type,
        control_id=row.control_id,
        processing_id=routing_.processing_id,
        version=VERSION,
        language=LANGUAGE,
        profile=PROFILE,
    )
    message.msh = parse_segment(msh, version="2.5", validation_level=VALIDATION_LEVEL.TOLERANT)
    message.evn.evn_2 = dtm(row.created_at, tz)  # when the identity changed
    # hl7apy attaches a segment when its first field is set: fill them in message order.
    values = pid_values(patient, ipp_namespace=routing_.sending_application, facility_oid=site.oid)
    pid = message.pid
    pid.pid_1 = "1"
    _set(pid, "pid_3", values.pid_3)
    _set(pid, "pid_5", values.pid_5)
    pid.pid_7 = values.pid_7
    pid.pid_8 = values.pid_8
    _set(pid, "pid_11", values.pid_11)
    _set(pid, "pid_32", values.pid_32)
    if event == "A31":
        message.pv1.pv1_2 = "N"  # PAM-FR: an A31 carries no visit, patient class N (not applicable)
    else:
        prior = [values.pid_3[0]]  # the IPP does not change; the INS repetition is what did
        if prior_ins := row.snapshot.get("prior_ins"):
            prior.append(ins_cx(Patient(ins_matricule=prior_ins[0], ins_oid=prior_ins[1])))
        _set(message.mrg, "mrg_1", prior)
    er7 = message.to_er7()
    validate(er7)
    return er7 + "\r"


def validate(er7: str) -> None:
    """hl7apy v2.5 STRICT structure check; the reason holds hl7apy's error type only (no values)."""
    try:
        ok = parse_message(
            er7.strip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        ).validate()
    except Exception as exc:  # hl7apy raises many unrelated exception types
        raise PropagationError(f"structure: hl7apy v2.5 STRICT refused it ({type(exc).__name__})") from exc
    if not ok:
        raise PropagationError("structure: hl7apy v2.5 STRICT validation failed")


# --- outbox bookkeeping (the sending task's steps) ------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    message_id: int
    patient_id: int
    control_id: str
    message_type: str
    status: OutboundStatus
    er7: str | None  # None: nothing to send (no longer pending)
    number: int
    ins_included: bool  # rule 31: the INS leaves the system (PID-3 or MRG-1)


def pending(session: Session, destination: str = "pfi") -> list[list[int]]:
    """Ids of pending messages, grouped per patient, each group in creation order (ids grow with it)."""
    rows = session.exec(
        select(OutboundMessage.id, OutboundMessage.patient_id)
        .where(OutboundMessage.status == OutboundStatus.pending, OutboundMessage.destination == destination)
        .order_by(OutboundMessage.id)
    ).all()
    groups: dict[int, list[int]] = {}
    for message_id, patient_id in rows:
        groups.setdefault(patient_id, []).append(message_id)
    return list(groups.values())


def _row(session: Session, message_id: int) -> OutboundMessage:
    row = session.get(OutboundMessage, message_id)
    if row is None:
        raise PropagationError(f"message_id: outbound message {message_id} does not exist")
    return row


def _attempt(row: OutboundMessage, er7: str | None) -> Attempt:
    snap = row.snapshot
    return Attempt(
        message_id=row.id,
        patient_id=row.patient_id,
        control_id=row.control_id,
        message_type=row.message_type,
        status=row.status,
        er7=er7,
        number=row.attempts,
        ins_included=bool(snap.get("ins") or snap.get("prior_ins")),
    )


def _finish(session: Session, row: OutboundMessage, status: OutboundStatus, error: str | None) -> None:
    row.status, row.last_error, row.updated_at = status, error[:500] if error else None, utcnow()
    session.add(row)
    session.flush()


def prepare(
    session: Session, message_id: int, settings: SiteSettings, *, now: dt.datetime | None = None
) -> Attempt:
    """Count one more attempt of a pending message, rendering its ER7 the first time. A message that
    cannot be rendered fails for good (its reason names the rule, never the data)."""
    row = _row(session, message_id)
    if row.status is not OutboundStatus.pending:
        return _attempt(row, None)
    if row.payload is None:
        try:
            row.payload = render(row, settings, now=now)
        except PropagationError as exc:
            _finish(session, row, OutboundStatus.failed, str(exc))
            return _attempt(row, None)
    row.attempts += 1
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return _attempt(row, row.payload)


def record_acknowledged(session: Session, message_id: int, *, partner: str) -> OutboundStatus:
    """AA; when the message carried an INS, `partner` is kept as having received it (rule 31)."""
    row = _row(session, message_id)
    _finish(session, row, OutboundStatus.acknowledged, None)
    if _attempt(row, None).ins_included:
        record_partner_exchange(session, row.patient_id, partner, Channel.hl7, None)
    return row.status


def record_transient(session: Session, message_id: int, reason: str) -> OutboundStatus:
    """AE, timeout, refused connection: the message stays pending for a retry or the next feed run."""
    row = _row(session, message_id)
    _finish(session, row, OutboundStatus.pending, reason)
    return row.status


def record_rejected(session: Session, message_id: int, reason: str) -> OutboundStatus:
    """AR: never resent automatically; a person looks at it (worklist)."""
    row = _row(session, message_id)
    _finish(session, row, OutboundStatus.failed, reason)
    session.add(
        WorklistItem(
            kind="identity-feed-rejected",
            object_type="patient",
            object_id=str(row.patient_id),
            reason=f"{row.message_type} {row.control_id} to {row.destination}: {reason}"[:500],
        )
    )
    session.flush()
    return row.status
