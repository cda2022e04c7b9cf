"""Inbound HL7 v2 identity intake (RIS.INS.55-57): store, then apply the PID, then acknowledge.

Every PAM-FR 2.11 event and the ORM / OMI / SIU a RIS receives are taken in (pam.SUPPORTED); only their
PID is acted upon here, the movement, order or appointment being acknowledged AA and kept as received.
AR is for what cannot be read (type, version, structure), AE for a PID that breaks an INS rule.

Own identification domain: the INS is taken only with PID-32 = VALI (PAM-FR naming collision, ins.md §8.2)
and the identity becomes QUAL. Other domains (rules 30, 51, 52, 55): an INS is verified with INSi before
it is kept (RECUP, or QUAL for a trusted sender when this site does not care for the patient directly);
a KO leaves a known identity untouched, creates an unknown one without INS, and opens a worklist item.
Doubtful or fictitious identities (PID-32 DOUT/FICT...) never call INSi (rule 25).
Rule 27: a known identity changed by another domain's message goes to the outbox (A31 / A47); one changed
by our own domain's référentiel does not, since that référentiel already told the platform (no echo).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.hl7v2.ack_writer import Party, Problem, Received, build_ack
from ris.hl7v2.mllp import MllpServer
from ris.identity import insi_service, propagation
from ris.identity.actors import ENGINE
from ris.identity.errors import IdentityRuleError
from ris.identity.insi_client import InsiClient, InsiFault, InsiUnavailable, TraitsQuery
from ris.identity.nir import matricule_problem
from ris.identity.pam import VERSIONS, Header, PamError, PamIdentity, PamMessage, parse, read_header
from ris.identity.registry import (
    PROPAGATE_INS,
    PROPAGATE_TRAITS,
    Change,
    create_identity,
    open_worklist,
    set_status,
)
from ris.identity.status import holds_insi_traits, insi_blocked
from ris.store import audit
from ris.store.db import session_scope
from ris.store.models import Exam, IdentityStatus, InboundMessage, Patient, utcnow

FEED_TRAITS = (
    "birth_name",
    "first_birth_given_name",
    "birth_given_names",
    "used_name",
    "used_given_name",
    "birth_date",
    "sex",
    "birth_place_code",
)


@dataclass(frozen=True)
class IntakePolicy:
    """Which senders belong to our identification domain (MSH-3^MSH-4 or MSH-3) and which are trusted."""

    own_domain: frozenset[str] = frozenset()
    trusted_senders: frozenset[str] = frozenset()
    cares_directly: bool = True  # rule 30 exception applies only to a receiver that does not

    def is_own(self, header: Header) -> bool:
        return header.sender in self.own_domain or header.sending_application in self.own_domain

    def is_trusted(self, header: Header) -> bool:
        return header.sender in self.trusted_senders or header.sending_application in self.trusted_senders


@dataclass
class Decision:
    status: IdentityStatus
    keep_ins: bool
    update_known: bool = True
    worklist: str | None = None
    notes: list[str] = field(default_factory=list)


class PamIntake:
    def __init__(self, policy: IntakePolicy, insi: InsiClient | None = None, database_url: str | None = None):
        self.policy, self.insi, self.url = policy, insi, database_url

    # --- entry points -------------------------------------------------------------------------------------

    async def handle(self, er7: str) -> str:
        try:
            header = read_header(er7)
        except PamError as err:
            self._store(
                f"unparsed^{hashlib.sha256(er7.encode()).hexdigest()[:16]}",
                "unknown",
                "?",
                er7,
                "rejected",
                str(err),
            )
            return _ack(None, "AR", Problem(err.code, err.text, err.location))
        stored = self._store_new(header, er7)
        if stored is not None:  # duplicate MSH-10 from this sender: same answer, no reprocessing
            return self._ack_for(header, stored)
        try:
            message = parse(er7)
            await self._apply(message)
        except PamError as err:
            self._finish(header, "rejected", str(err))
            return _ack(header, "AR" if err.reject else "AE", Problem(err.code, err.text, err.location))
        except IdentityRuleError as err:
            self._finish(header, "rejected", str(err))
            return _ack(header, "AE", Problem("207", str(err), _location(err.field)))
        self._finish(header, "accepted", None)
        return _ack(header, "AA")

    async def import_file(self, path: Path) -> list[str]:
        """Messages of a file (segments split by CR or LF, each message starting with MSH) -> ACK codes."""
        text = path.read_text(encoding="utf-8").replace("\r\n", "\r").replace("\n", "\r")
        messages = ["MSH" + m for m in text.split("MSH")[1:] if m.strip("\r")]
        codes = []
        for m in messages:
            ack = await self.handle(m.strip("\r") + "\r")
            codes.append(ack.split("\r")[1].split("|")[1])
        return codes

    def listener(self, host: str = "127.0.0.1", port: int = 0) -> MllpServer:
        return MllpServer(self.handle, host, port)

    # --- storage ------------------------------------------------------------------------------------------

    def _store(
        self, sender: str, control_id: str, mtype: str, raw: str, outcome: str, error: str | None
    ) -> None:
        with session_scope(self.url) as s:
            s.add(
                InboundMessage(
                    sender=sender[:128],
                    control_id=control_id[:64],
                    message_type=mtype[:24],
                    raw=raw,
                    outcome=outcome,
                    error=error[:500] if error else None,
                )
            )

    def _store_new(self, header: Header, raw: str) -> InboundMessage | None:
        """The message is stored before anything else; returns the earlier row for a duplicate."""
        try:
            self._store(header.sender, header.control_id, header.message_type, raw, "received", None)
        except sa.exc.IntegrityError:
            with session_scope(self.url) as s:
                return s.exec(
                    select(InboundMessage).where(
                        InboundMessage.sender == header.sender[:128],
                        InboundMessage.control_id == header.control_id[:64],
                    )
                ).one()
        return None

    def _finish(self, header: Header, outcome: str, error: str | None) -> None:
        with session_scope(self.url) as s:
            row = s.exec(
                select(InboundMessage).where(
                    InboundMessage.sender == header.sender[:128],
                    InboundMessage.control_id == header.control_id[:64],
                )
            ).one()
            row.outcome, row.error = outcome, error[:500] if error else None
            s.add(row)

    def _ack_for(self, header: Header, row: InboundMessage) -> str:
        if row.outcome == "accepted":
            return _ack(header, "AA")
        return _ack(header, "AE", Problem("207", f"already processed: {row.error or row.outcome}", "MSH-10"))

    # --- applying ----------------------------------------------------------------------------------------

    async def _apply(self, message: PamMessage) -> None:
        ident, header = message.identity, message.header
        if ident is None:  # an order or appointment without PID: nothing of the identity to take in
            return
        with session_scope(self.url) as s:
            known = _by_ipp(s, message.prior_ipp or ident.ipp)
            if message.header.event == "A40" and message.prior_ipp:
                survivor = _by_ipp(s, ident.ipp)
                if known is None or survivor is None:
                    raise PamError("207", "MRG-1", "both patients of a merge must be known")
                _merge(s, absorbed=known, survivor=survivor)
                known = survivor
            decision = await self._decide(s, header, ident, known)
            if known is None:
                patient = _create(s, header, ident, decision)
            elif decision.update_known:
                own = self.policy.is_own(header)
                patient = _update(s, known, ident, decision, header, propagate=not own)
            else:
                patient = known
            if decision.worklist:
                open_worklist(s, decision.worklist, patient, "; ".join(decision.notes) or decision.worklist)
            audit.record(
                s,
                actor=f"pam:{header.sending_application}"[:64],
                action="identity.pam",
                object_type="patient",
                object_id=patient.id,
                message_type=header.message_type,
                event=header.event,
                control_id=header.control_id,
                sender=header.sender,
                notes=decision.notes,
            )

    async def _decide(
        self, s: Session, header: Header, ident: PamIdentity, known: Patient | None
    ) -> Decision:
        if ident.ins_matricule and (problem := matricule_problem(ident.ins_matricule)):
            raise PamError("103", "PID-3.1", f"INS {problem}")
        blocked = insi_blocked(ident.attributes)
        if self.policy.is_own(header):
            if blocked:
                return Decision(IdentityStatus.PROV, keep_ins=False, notes=["douteuse/fictive: INS not kept"])
            if ident.ins_matricule and "VALI" in ident.reliability:
                return Decision(IdentityStatus.QUAL, keep_ins=True)
            status = IdentityStatus.VALI if "VALI" in ident.reliability else IdentityStatus.PROV
            return Decision(
                status,
                keep_ins=False,
                notes=["INS without PID-32 VALI: not kept"] if ident.ins_matricule else [],
            )
        if not ident.ins_matricule or blocked:
            return Decision(IdentityStatus.PROV, keep_ins=False)
        if known and holds_insi_traits(known.status) and known.ins_matricule == ident.ins_matricule:
            return Decision(known.status, keep_ins=True, notes=["INS already held locally"])
        verdict = await self._verify(s, ident)
        if verdict is True:
            trusted = self.policy.is_trusted(header) and not self.policy.cares_directly
            return Decision(IdentityStatus.QUAL if trusted else IdentityStatus.RECUP, keep_ins=True)
        reason = "INSi verification KO" if verdict is False else "INSi verification not possible"
        kind = "insi-verification-ko" if verdict is False else "insi-verification-pending"
        return Decision(
            IdentityStatus.PROV, keep_ins=False, update_known=False, worklist=kind, notes=[reason]
        )

    async def _verify(self, s: Session, ident: PamIdentity) -> bool | None:
        """Rule 52: automatic verification; None when INSi is not configured or not reachable."""
        if self.insi is None or not (ident.birth_name and ident.first_birth_given_name and ident.birth_date):
            return None
        traits = TraitsQuery(
            ident.birth_name,
            (ident.first_birth_given_name,),
            ident.sex or "",
            ident.birth_date,
            ident.birth_place_code,
        )
        call = await self.insi.verify(ident.ins_matricule, ident.ins_oid, traits)
        insi_service.record(s, ENGINE, call, None)
        if isinstance(call.error, InsiUnavailable | InsiFault) or call.result is None:
            return None
        return call.result.code == "00"


def _ack(header: Header | None, code: str, problem: Problem | None = None) -> str:
    """Our MSH mirrors the sender's MSH-5 / MSH-6; a message without a readable MSH has nothing to mirror.
    The intake knows no site time zone: its ACKs are stamped in UTC."""
    if header is None:
        return build_ack(
            code, Received(), sender=Party("RIS", ""), version="2.5", now=utcnow(), tz="UTC", problem=problem
        )
    received = Received(
        sending_application=header.sending_application,
        sending_facility=header.sending_facility,
        receiving_application=header.receiving_application,
        receiving_facility=header.receiving_facility,
        message_code=header.message_type.split("^")[0],
        trigger=header.event,
        control_id=header.control_id,
    )
    version = header.version if header.version in VERSIONS else "2.5"  # our ERR is written in 2.5
    return build_ack(code, received, version=version, now=utcnow(), tz="UTC", problem=problem)


def _location(fieldname: str) -> str:
    return {
        "birth_name": "PID-5.1",
        "first_birth_given_name": "PID-5.2",
        "birth_given_names": "PID-5.3",
        "birth_date": "PID-7",
        "sex": "PID-8",
        "birth_place_code": "PID-11.9",
    }.get(fieldname, "PID")


def _by_ipp(s: Session, ipp: str | None) -> Patient | None:
    return s.exec(select(Patient).where(Patient.ipp == ipp)).first() if ipp else None


def _create(s: Session, header: Header, ident: PamIdentity, d: Decision) -> Patient:
    values = {k: getattr(ident, k) for k in FEED_TRAITS}
    patient = create_identity(s, ENGINE, ipp=ident.ipp, source_domain=header.sender[:64], **values)
    patient.attributes = ident.attributes
    if d.keep_ins:
        patient.ins_matricule, patient.ins_oid = ident.ins_matricule, ident.ins_oid
    if d.status is not IdentityStatus.PROV:
        set_status(s, patient, d.status, _brought_by(header), ENGINE.id)
    s.add(patient)
    s.flush()
    return patient


def _brought_by(header: Header) -> str:
    """Which message brought a change, for the audit trail: type, MSH-10 and sender (no patient data)."""
    return f"{header.message_type} {header.control_id} from {header.sender}"


def _update(
    s: Session, patient: Patient, ident: PamIdentity, d: Decision, header: Header, *, propagate: bool
) -> Patient:
    """The upstream référentiel governs its identities: traits overwritten, INS added, changed or removed.
    `propagate`: the change also goes downstream (rule 27); enqueue leaves the A47 out when the
    transmitted INS did not change."""
    change = Change(patient)  # before any change: remembers the INS downstream systems knew
    changed = {}
    values = {k: getattr(ident, k) for k in FEED_TRAITS if getattr(ident, k) is not None}
    values["ipp"] = ident.ipp
    values["attributes"] = ident.attributes
    values["ins_matricule"] = ident.ins_matricule if d.keep_ins else None
    values["ins_oid"] = ident.ins_oid if d.keep_ins else None
    for k, v in values.items():
        if getattr(patient, k) != v:
            changed[k] = [str(getattr(patient, k)), str(v)]
            setattr(patient, k, v)
    patient.updated_at = utcnow()
    s.add(patient)
    if changed:
        audit.record(
            s,
            actor=ENGINE.id,
            action="identity.edit",
            object_type="patient",
            object_id=patient.id,
            fields=changed,
            source=header.sender,
            message=_brought_by(header),
        )
    status_changed = d.status is not patient.status
    if status_changed:
        set_status(s, patient, d.status, _brought_by(header), ENGINE.id)
    s.flush()
    if propagate and (changed or status_changed):
        change.propagate = [PROPAGATE_TRAITS, PROPAGATE_INS]
        propagation.enqueue(s, change)
    return patient


def _merge(s: Session, *, absorbed: Patient, survivor: Patient) -> None:
    """A40: the survivor takes the exams; the absorbed record stays for the history, marked as merged."""
    for exam in s.exec(select(Exam).where(Exam.patient_id == absorbed.id)).all():
        exam.patient_id = survivor.id
        s.add(exam)
    audit.record(
        s,
        actor=ENGINE.id,
        action="identity.merge",
        object_type="patient",
        object_id=survivor.id,
        absorbed=absorbed.id,
    )


async def serve(intake: PamIntake, host: str, port: int) -> None:
    """Run the MLLP listener until cancelled (Ctrl-C in the CLI)."""
    async with intake.listener(host, port) as server:
        print(f"PAM listener on {server.host}:{server.port}", flush=True)
        await asyncio.Event().wait()
