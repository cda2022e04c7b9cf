"""Inbound HL7 v2 identity intake (RIS.INS.55-57): store, then apply the PID, then acknowledge.

Every PAM-FR 2.11 event and the ORM / OMI / SIU a RIS receives are taken in (pam.SUPPORTED); only their
PID is acted upon here, the movement, order or appointment being acknowledged AA and kept as received.
AR is for what cannot be read (type, version, structure), AE for a PID that breaks an INS rule.

Own identification domain: the INS is taken only with PID-32 = VALI (PAM-FR naming collision, ins.md §8.2)
and the identity becomes QUAL. Other domains (rules 30, 51, 52, 55): an INS is verified with INSi before
it is kept, after the ACK, by a run of its own (ris.identity.verification): the message's INS and traits
wait in an InsVerification row, an unknown identity is created without INS, a known one is left as it
is until INSi answered; the `verifier` the engine gives starts that run (idempotent per identity and
message), and a listener starting again starts those still pending. Doubtful or fictitious identities
(PID-32 DOUT/FICT...) never call INSi (rule 25).
Rule 27: a known identity changed by another domain's message goes to the outbox (A31 / A47); one changed
by our own domain's référentiel does not, since that référentiel already told the platform (no echo).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.hl7v2.ack_writer import Party, Problem, Received, build_ack
from ris.hl7v2.inbound import Allowlist, key_problem, peer_trace
from ris.hl7v2.mllp import Limits, MllpServer, Peer, Tls
from ris.identity import propagation, verification
from ris.identity.actors import ENGINE
from ris.identity.errors import IdentityRuleError
from ris.identity.nir import matricule_problem
from ris.identity.pam import (
    SUPPORTED,
    VERSIONS,
    Header,
    PamError,
    PamIdentity,
    PamMessage,
    parse,
    read_header,
)
from ris.identity.registry import (
    PROPAGATE_INS,
    PROPAGATE_TRAITS,
    Change,
    create_identity,
    set_status,
)
from ris.identity.status import holds_insi_traits, insi_blocked
from ris.store import audit, listener_refusals
from ris.store.db import session_scope
from ris.store.models import Exam, IdentityStatus, InboundMessage, Patient, utcnow

log = logging.getLogger("ris.identity.intake")
# Starts the verification run of (verification id, run key); the engine's goes through the Prefect API.
Verifier = Callable[[int, str], Awaitable[object]]
START_ATTEMPTS = 5  # a run that cannot start now (the API busy) is tried again, then left to the next start

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
    verify: bool = False  # the INS waits for its INSi verification (rule 52)
    notes: list[str] = field(default_factory=list)


class PamIntake:
    """Store, apply, acknowledge. A message is stored `received` in its own unit of work, then applied and
    marked `accepted` in one more: a crash between the two leaves it `received`, and it is applied when
    the listener starts again (`recover`) or when the sender resends it, never refused for our crash.
    Database work runs in a worker thread; the INSi verifications it requests are started on the event
    loop once the message is acknowledged (`verifier`; without one they wait, pending, for an engine).
    """

    def __init__(
        self,
        policy: IntakePolicy,
        verifier: Verifier | None = None,
        database_url: str | None = None,
        *,
        allowlist: Allowlist | None = None,
        limits: Limits | None = None,
        tls: Tls | None = None,
        charset: str = "utf-8",
    ):
        self.policy, self.verifier, self.url = policy, verifier, database_url
        self._starting: set[asyncio.Task[None]] = set()
        self.allowlist = allowlist or Allowlist()
        self.limits, self.tls, self.charset = limits, tls, charset

    # --- entry points -------------------------------------------------------------------------------------

    async def handle(self, er7: str, peer: Peer | None = None) -> str:
        requested: list[tuple[int, str]] = []
        ack = await asyncio.to_thread(self._process, er7, peer, requested)
        for verification_id, key in requested:  # after the message is stored and its ACK written
            self._start(verification_id, key)
        return ack

    async def recover(self) -> int:
        """Apply the messages a crash left `received` (stored, maybe ACKed by nobody), then start the INSi
        verifications still pending (their start is idempotent): returns how many messages."""
        left = await asyncio.to_thread(self._left_received)
        for row_id, raw in left:
            requested: list[tuple[int, str]] = []
            await asyncio.to_thread(self._resume, row_id, raw, requested)
        if self.verifier is not None:
            for verification_id, key in await asyncio.to_thread(self._pending_verifications):
                self._start(verification_id, key)
        return len(left)

    async def drain(self) -> None:
        """Wait for the verification starts under way (a command that imports a file before it exits)."""
        while self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)

    def _start(self, verification_id: int, key: str) -> None:
        if self.verifier is None:
            log.info("INSi verification %s waits for the engine to start it", verification_id)
            return
        task = asyncio.create_task(self._start_run(verification_id, key))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_run(self, verification_id: int, key: str) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self.verifier(verification_id, key)
                return
            except Exception as exc:  # the row stays pending: the next listener start starts it again
                log.warning(
                    "INSi verification %s: run not started (attempt %s): %s",
                    verification_id,
                    attempt,
                    type(exc).__name__,
                )
                await asyncio.sleep(2**attempt)

    async def import_file(self, path: Path) -> list[str]:
        """Messages of a file (segments split by CR or LF, each message starting with MSH) -> ACK codes."""
        text = path.read_text(encoding="utf-8").replace("\r\n", "\r").replace("\n", "\r")
        messages = ["MSH" + m for m in text.split("MSH")[1:] if m.strip("\r")]
        codes = []
        for m in messages:
            ack = await self.handle(m.strip("\r") + "\r")
            codes.append(ack.split("\r")[1].split("|")[1])
        await self.drain()
        return codes

    def listener(self, host: str = "127.0.0.1", port: int = 0) -> MllpServer:
        return MllpServer(
            self.handle,
            host,
            port,
            limits=self.limits,
            tls=self.tls,
            default_charset=self.charset,
            on_start=self.recover,
        )

    # --- one message (worker thread) ----------------------------------------------------------------------

    def _process(self, er7: str, peer: Peer | None, requested: list[tuple[int, str]]) -> str:
        try:
            header = read_header(er7)
        except PamError as err:
            self._store_unreadable(er7, err)
            return _ack(None, "AR", Problem(err.code, err.text, err.location))
        if problem := key_problem(header.sender, header.control_id):
            return _ack(header, "AR", problem)  # nothing stored: its key cannot be kept whole
        if problem := self.allowlist.refusal(header.sending_application, header.sender, peer):
            listener_refusals.record(
                self.url, "pam", header.sender, header.control_id, problem.text, **peer_trace(peer)
            )
            return _ack(header, "AR", problem)
        row = self._store_new(header, er7)
        if row.outcome != "received":  # a resend of a message already judged: same answer, once
            return self._ack_for(header, row)
        return self._apply_stored(header, row.id, er7, requested)

    def _resume(self, row_id: int, raw: str, requested: list[tuple[int, str]]) -> None:
        self._apply_stored(read_header(raw), row_id, raw, requested)

    def _apply_stored(self, header: Header, row_id: int, er7: str, requested: list[tuple[int, str]]) -> str:
        try:
            message = parse(er7)
            with session_scope(self.url) as s:
                claimed = _claim(s, row_id)
                if claimed:
                    asked = self._apply(s, message, row_id)
            if claimed:
                requested.extend(asked)
        except PamError as err:
            self._finish(row_id, "rejected", str(err))
            return _ack(header, "AR" if err.reject else "AE", Problem(err.code, err.text, err.location))
        except IdentityRuleError as err:
            self._finish(row_id, "rejected", str(err))
            return _ack(header, "AE", Problem("207", str(err), _location(err.field)))
        if not claimed:  # a concurrent resend applied it first
            with session_scope(self.url) as s:
                return self._ack_for(header, s.get(InboundMessage, row_id))
        return _ack(header, "AA")

    # --- storage ------------------------------------------------------------------------------------------

    def _store_unreadable(self, raw: str, err: PamError) -> None:
        digest = hashlib.sha256(raw.encode()).hexdigest()
        row = InboundMessage(
            sender=f"unparsed^{digest[:16]}",
            control_id=digest[:64],
            message_type="?",
            raw=raw,
            outcome="rejected",
            error=str(err)[:500],
        )
        with contextlib.suppress(sa.exc.IntegrityError), session_scope(self.url) as s:
            s.add(row)  # the same unreadable bytes twice: kept once

    def _store_new(self, header: Header, raw: str) -> InboundMessage:
        """The message is stored before anything else; a resend finds the row already kept."""
        row = InboundMessage(
            sender=header.sender,
            control_id=header.control_id,
            message_type=header.message_type[:24],
            raw=raw,
        )
        try:
            with session_scope(self.url) as s:
                s.add(row)
            return row
        except sa.exc.IntegrityError:
            with session_scope(self.url) as s:
                return s.exec(
                    select(InboundMessage).where(
                        InboundMessage.sender == header.sender,
                        InboundMessage.control_id == header.control_id,
                    )
                ).one()

    def _finish(self, row_id: int, outcome: str, error: str | None) -> None:
        with session_scope(self.url) as s:
            s.connection().execute(
                sa.update(InboundMessage)
                .where(InboundMessage.id == row_id, InboundMessage.outcome == "received")
                .values(outcome=outcome, error=error[:500] if error else None)
            )

    def _pending_verifications(self) -> list[tuple[int, str]]:
        with session_scope(self.url) as s:
            return verification.pending(s)

    def _left_received(self) -> list[tuple[int, str]]:
        with session_scope(self.url) as s:
            rows = s.exec(
                select(InboundMessage).where(InboundMessage.outcome == "received").order_by(InboundMessage.id)
            ).all()
        return [(r.id, r.raw) for r in rows if r.message_type.split("^")[0] in SUPPORTED]

    def _ack_for(self, header: Header, row: InboundMessage) -> str:
        if row.outcome == "accepted":
            return _ack(header, "AA")
        return _ack(header, "AE", Problem("207", f"already processed: {row.error or row.outcome}", "MSH-10"))

    # --- applying (in the unit of work that marks the message accepted) ------------------------------------

    def _apply(self, s: Session, message: PamMessage, row_id: int) -> list[tuple[int, str]]:
        """Apply the identity part; returns the INSi verifications requested, (id, run key)."""
        ident, header = message.identity, message.header
        if ident is None:  # an order or appointment without PID: nothing of the identity to take in
            return []
        known = _by_ipp(s, message.prior_ipp or ident.ipp)
        if message.header.event == "A40" and message.prior_ipp:
            survivor = _by_ipp(s, ident.ipp)
            if known is None or survivor is None:
                raise PamError("207", "MRG-1", "both patients of a merge must be known")
            _merge(s, absorbed=known, survivor=survivor)
            known = survivor
        decision = self._decide(header, ident, known)
        if known is None:
            patient = _create(s, header, ident, decision)
        elif decision.update_known:
            own = self.policy.is_own(header)
            patient = _update(s, known, ident, decision, header, propagate=not own)
        else:
            patient = known
        asked = []
        if decision.verify:
            row = verification.request(
                s,
                patient,
                {k: getattr(ident, k) for k in verification.SNAPSHOT},
                matricule=ident.ins_matricule,
                oid=ident.ins_oid,
                inbound_message_id=row_id,
                source=_brought_by(header),
                update_known=known is not None,
                qualify=self.policy.is_trusted(header) and not self.policy.cares_directly,
            )
            asked.append((row.id, verification.run_key(row)))
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
        return asked

    def _decide(self, header: Header, ident: PamIdentity, known: Patient | None) -> Decision:
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
        # Rule 52: verified after the ACK; until INSi answers, the INS is not kept and a known identity
        # is not updated (rule 51 if INSi says KO).
        return Decision(
            IdentityStatus.PROV,
            keep_ins=False,
            update_known=False,
            verify=True,
            notes=["INS kept apart until INSi verifies it (INS rule 52)"],
        )


def _claim(s: Session, row_id: int) -> bool:
    """Mark a stored message accepted in the unit of work that applies it; False when another worker did
    (the row lock on PostgreSQL, the write lock on SQLite make the second one wait, then find it done)."""
    result = s.connection().execute(
        sa.update(InboundMessage)
        .where(InboundMessage.id == row_id, InboundMessage.outcome == "received")
        .values(outcome="accepted", error=None)
    )
    return result.rowcount == 1


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
    async with intake.listener(host, port) as server:  # recovers what a crash left half-way first
        print(f"PAM listener on {server.host}:{server.port}", flush=True)
        await asyncio.Event().wait()
