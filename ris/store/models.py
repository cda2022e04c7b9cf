"""The engine's state of record (sqlmodel tables). Schema changes go through Alembic migrations.

Datetimes are timezone-aware UTC everywhere (`utcnow()`); enums are stored as constrained strings so that
SQLite and PostgreSQL share one migration.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enum_column(enum_cls: type[StrEnum], column: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint; the constraint is named after the column (unique per table)."""
    return sa.Enum(
        enum_cls,
        name=f"ck_{column}_values",
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class IdentityStatus(StrEnum):
    """RNIV statuses (ins.md §4)."""

    PROV = "PROV"  # identité provisoire
    RECUP = "RECUP"  # identité récupérée
    VALI = "VALI"  # identité validée
    QUAL = "QUAL"  # identité qualifiée


class ReportStatus(StrEnum):
    draft = "draft"
    provisional = "provisional"
    validated = "validated"
    deleted = "deleted"


class Channel(StrEnum):
    dmp = "dmp"
    mss_ps = "mss-ps"
    mss_patient = "mss-patient"
    hl7 = "hl7"
    reminder = "reminder"  # a mail to a radiologist of the site (RIS.CRR.06); never leaves the site's staff


class DeliveryStatus(StrEnum):
    """Per version x channel x recipient distribution status (spec README, state model)."""

    blocked = "blocked"
    waiting_announcement = "waiting_announcement"
    pending = "pending"
    sent = "sent"
    acknowledged = "acknowledged"
    read = "read"
    failed = "failed"


# --- identity -------------------------------------------------------------------------------------------


class Patient(SQLModel, table=True):
    """Identity record of INS rule 1 (ins.md §2), plus the local IPP and the RNIV status."""

    __table_args__ = (
        sa.CheckConstraint(
            "(ins_matricule IS NULL) = (ins_oid IS NULL)", name="ck_patient_ins_matricule_with_oid"
        ),
        sa.CheckConstraint("length(ins_matricule) = 15", name="ck_patient_ins_matricule_length"),
        sa.CheckConstraint("sex IN ('M', 'F', 'U')", name="ck_patient_sex"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ipp: str = Field(max_length=32, unique=True, description="Local patient id (IPP)")
    ins_matricule: str | None = Field(default=None, max_length=15)
    ins_oid: str | None = Field(default=None, max_length=64)
    birth_name: str = Field(max_length=100)
    birth_given_names: str | None = Field(default=None, max_length=200)
    first_birth_given_name: str = Field(max_length=100)
    birth_date: dt.date
    sex: str = Field(max_length=1)
    birth_place_code: str = Field(max_length=5)
    used_name: str | None = Field(default=None, max_length=100)
    used_given_name: str | None = Field(default=None, max_length=100)
    status: IdentityStatus = Field(default=IdentityStatus.PROV, sa_type=enum_column(IdentityStatus, "status"))
    attributes: list[str] = Field(default_factory=list, sa_type=JSON, description="douteuse/fictive/homonyme")
    justificatif_kind: str | None = Field(default=None, max_length=64)
    justificatif_high_confidence: bool = False
    collection_mode: str | None = Field(default=None, max_length=8, description="SM, CV, INSI, CB...")
    source_domain: str | None = Field(default=None, max_length=64, description="Identity domain it came from")
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class RefusalChannel(StrEnum):
    """The channels a patient may refuse (mssante.md §4)."""

    mss_patient = "mss-patient"  # RIS.MSS.21: the patient's own Mon espace santé mailbox
    mss_ps = "mss-ps"  # RIS.MSS.25: mails to professionals


class PatientRefusal(SQLModel, table=True):
    """A patient's refusal of one MSSanté channel, or its withdrawal (refused=False), with who and when.

    Append-only: the history is kept and the latest row per channel is the patient's current choice; a
    report may override it (`Report.refuse_mss_patient` / `refuse_mss_ps`)."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    channel: RefusalChannel = Field(sa_type=enum_column(RefusalChannel, "channel"))
    refused: bool
    at: dt.datetime = Field(default_factory=utcnow)
    by: str = Field(max_length=64, description="RPPS of the user, or the source (worklist)")
    reason: str | None = Field(default=None, max_length=200)


class IdentityStatusChange(SQLModel, table=True):
    """Status history (rule 21): previous status, when, and who."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    previous: IdentityStatus | None = Field(default=None, sa_type=enum_column(IdentityStatus, "previous"))
    new: IdentityStatus = Field(sa_type=enum_column(IdentityStatus, "new"))
    reason: str = Field(max_length=200)
    by: str = Field(max_length=64)
    at: dt.datetime = Field(default_factory=utcnow)


class InsiExchange(SQLModel, table=True):
    """Every INSi call and everything it returned (rules 4, 37, 39, 48, 53)."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    operation: str = Field(max_length=32, description="search_traits / search_vitale / verify")
    request: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    code_cr: str | None = Field(default=None, max_length=4)
    response: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    fault: str | None = Field(default=None, max_length=500)
    by: str = Field(max_length=64)
    at: dt.datetime = Field(default_factory=utcnow)


class ExchangeChannel(StrEnum):
    """How health data with the INS reached a partner (rule 31): a delivery channel, or a contextual call."""

    dmp = "dmp"
    mss_ps = "mss-ps"
    mss_patient = "mss-patient"
    hl7 = "hl7"
    reminder = "reminder"
    context_call = "context-call"  # RIS.AC.01, RIS.DMP.04-05: the INS in the address of an outgoing call


class PartnerExchange(SQLModel, table=True):
    """Partners that received health data with the INS (rule 31, RIS.INS.51)."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    partner: str = Field(max_length=200)
    channel: ExchangeChannel = Field(sa_type=enum_column(ExchangeChannel, "channel"))
    document_id: str | None = Field(default=None, max_length=64)
    at: dt.datetime = Field(default_factory=utcnow)


class InboundMessage(SQLModel, table=True):
    """HL7 v2 messages received (PAM-FR feed, ZAM receipts): stored before they are acknowledged."""

    __table_args__ = (sa.UniqueConstraint("sender", "control_id", name="uq_inbound_sender_control_id"),)

    id: int | None = Field(default=None, primary_key=True)
    sender: str = Field(max_length=128, description="MSH-3^MSH-4")
    control_id: str = Field(max_length=64, description="MSH-10")
    message_type: str = Field(max_length=24)
    raw: str = Field(sa_type=sa.Text)
    outcome: str = Field(default="received", max_length=16, description="received / accepted / rejected")
    error: str | None = Field(default=None, max_length=500)
    received_at: dt.datetime = Field(default_factory=utcnow)


class WorklistItem(SQLModel, table=True):
    """Something a person must look at (the identity-vigilance worklist, rule 55): INSi verification KO or
    impossible, an INS another identity holds, a feed message refused, a worklist record refused. Listed
    by `ris identity worklist`, closed by `ris identity resolve` (who, how, why)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=48, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    # What raised it: the message (type, MSH-10, sender) or the file record, in words; ids only.
    source: str | None = Field(default=None, max_length=200)
    inbound_message_id: int | None = Field(default=None, foreign_key="inboundmessage.id")
    verification_id: int | None = Field(default=None, foreign_key="insverification.id")
    resolution: str | None = Field(default=None, max_length=32, description="retried / closed")
    resolution_note: str | None = Field(default=None, max_length=500, description="Why, as the person said")
    alerted_at: dt.datetime | None = Field(default=None, description="When its age was alerted (once)")


class VerificationStatus(StrEnum):
    pending = "pending"  # requested, INSi not answered yet (or its run not started yet)
    verified = "verified"  # INSi OK: the INS is kept (RECUP, or QUAL under the rule 30 exception)
    refused = "refused"  # INSi KO: the INS is not kept (rule 51), worklist item (rule 55)
    failed = "failed"  # INSi could not answer usably (fault, unreadable, out after retries): worklist
    conflict = "conflict"  # INSi OK, but another identity holds this INS, or this one holds another: worklist


class InsVerification(SQLModel, table=True):
    """An INS received from another identification domain and its automatic INSi verification (rules 30,
    51, 52, 55): what the message said is kept here, apart from the identity, until INSi answers; then
    it is applied (OK) or not (KO). One per identity and received message; `round` counts the tries a
    person asked for again (`ris identity resolve --action retry`)."""

    __table_args__ = (
        sa.UniqueConstraint("patient_id", "inbound_message_id", name="uq_insverification_message"),
        sa.CheckConstraint("length(matricule) = 15", name="ck_insverification_matricule_length"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    inbound_message_id: int = Field(foreign_key="inboundmessage.id")
    matricule: str = Field(max_length=15)
    oid: str = Field(max_length=64)
    traits: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, description="As the message said")
    source: str = Field(max_length=200, description="Message type, MSH-10 and sender")
    update_known: bool = Field(description="The identity existed: on OK it takes the message's traits too")
    qualify: bool = Field(description="Rule 30 exception: trusted sender, site not caring directly: QUAL")
    status: VerificationStatus = Field(
        default=VerificationStatus.pending, sa_type=enum_column(VerificationStatus, "status"), index=True
    )
    round: int = 1
    attempts: int = 0
    outcome: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


# --- users and roles (habilitations) ----------------------------------------------------------------------


class UserKind(StrEnum):
    rpps = "rpps"  # a health professional: 11 digits (a Pro Santé Connect login maps to it)
    adeli = "adeli"  # a professional without RPPS: 9 characters
    local = "local"  # staff without a national number, or a scheduled job: a local id


class RisUser(SQLModel, table=True):
    """Someone who acts through the engine (RNIV rules 1, 3, 4, 17; RIS.INS.05-06). What they may do comes
    from their roles (ris.auth.roles), granted by an administrator; every change is audited."""

    id: str = Field(primary_key=True, max_length=32, description="RPPS, ADELI or local id")
    kind: UserKind = Field(sa_type=enum_column(UserKind, "kind"))
    name: str | None = Field(default=None, max_length=100, description="How colleagues know them")
    created_at: dt.datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=32)


class UserRole(SQLModel, table=True):
    """A role a user holds now; a revocation deletes it (the audit trail keeps the history)."""

    user_id: str = Field(foreign_key="risuser.id", primary_key=True, max_length=32)
    role: str = Field(primary_key=True, max_length=32)
    granted_at: dt.datetime = Field(default_factory=utcnow)
    granted_by: str = Field(max_length=32)


# --- orders, correspondents, reports ---------------------------------------------------------------------


class Correspondent(SQLModel, table=True):
    """A health professional or organisation that requests exams or receives reports."""

    __table_args__ = (sa.CheckConstraint("rpps IS NULL OR length(rpps) = 11", name="ck_correspondent_rpps"),)

    id: int | None = Field(default=None, primary_key=True)
    rpps: str | None = Field(default=None, max_length=11, unique=True)
    family: str = Field(max_length=100)
    given: str | None = Field(default=None, max_length=100)
    title: str | None = Field(default="Dr", max_length=16)
    mss_address: str | None = Field(default=None, max_length=254)
    organisation: str | None = Field(default=None, max_length=200)
    finess: str | None = Field(default=None, max_length=9)
    specialty_code: str | None = Field(
        default=None, max_length=16, description="JDV_J01 specialty of a radiologist, e.g. G15_10/SM74"
    )


class Exam(SQLModel, table=True):
    """The order and the imaging exam it produced (inFulfillmentOf, documentationOf, PV1)."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=64, unique=True, description="Placer order number")
    accession_number: str = Field(max_length=64, unique=True)
    study_instance_uid: str = Field(max_length=64, unique=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    requester_id: int | None = Field(default=None, foreign_key="correspondent.id")
    modality: str = Field(max_length=4, description="DICOM modality: CT, MR, US, DX, MG, NM, PT, XA...")
    exam_code: str = Field(max_length=16, description="LOINC code of the exam")
    exam_label: str = Field(max_length=200)
    ccam_code: str | None = Field(default=None, max_length=16)
    encounter_class: str = Field(default="O", max_length=1, description="PV1-2: O, I, E, R, N")
    visit_number: str | None = Field(default=None, max_length=32)
    started_at: dt.datetime
    ended_at: dt.datetime | None = None


class Report(SQLModel, table=True):
    """The radiology report (compte rendu d'imagerie) and the choices that drive its distribution."""

    __table_args__ = (
        sa.CheckConstraint("version >= 0", name="ck_report_version"),
        sa.CheckConstraint("confidentiality IN ('N', 'R', 'V')", name="ck_report_confidentiality"),
    )

    id: str = Field(primary_key=True, max_length=64, description="Report id: never carries health data")
    exam_id: int = Field(foreign_key="exam.id", unique=True)
    set_id: str = Field(max_length=64, unique=True, description="CDA setId, minted once for all versions")
    version: int = Field(default=0, description="Current validated version; 0 before the first validation")
    status: ReportStatus = Field(default=ReportStatus.draft, sa_type=enum_column(ReportStatus, "status"))
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    conclusion: str = Field(default="", sa_type=sa.Text)
    author_rpps: str = Field(max_length=11)
    provisional_since: dt.datetime | None = None
    validated_at: dt.datetime | None = None
    validator_rpps: str | None = Field(default=None, max_length=11)
    announcement_required: bool = False
    announcement_recorded_at: dt.datetime | None = None
    announcement_recorded_by: str | None = Field(default=None, max_length=11)
    dmp_blocked: bool = Field(default=False, description="RIS.DMP.03 user block of the DMP feed")
    # Per-report override of the patient's refusals (PatientRefusal, RIS.MSS.21 / RIS.MSS.25): None follows
    # the patient's current choice; True / False decide for this report only. Readers use the effective
    # values (`ris.lifecycle.refusals`, `ReportBundle.refusals`), never these columns alone.
    refuse_mss_patient: bool | None = Field(
        default=None, description="Override of the patient's refusal of the Mon espace santé mail"
    )
    refuse_mss_ps: bool | None = Field(
        default=None, description="Override of the patient's refusal of mails to professionals"
    )
    refusal_override_by: str | None = Field(default=None, max_length=64, description="Who set an override")
    refusal_override_at: dt.datetime | None = Field(default=None, description="When an override was set")
    mask_ps: bool = Field(default=False, description="MASQUE_PS (RIS.DMP.06)")
    invisible_legal_reps: bool = Field(default=False, description="INVISIBLE_REPRESENTANTS_LEGAUX")
    secret_connection: bool = Field(default=False, description="CONNEXION_SECRETE")
    confidentiality: str = Field(default="N", max_length=1)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ReportRecipient(SQLModel, table=True):
    """A correspondent the report goes to (RIS.DOC.04 lists them on the report)."""

    __table_args__ = (sa.UniqueConstraint("report_id", "correspondent_id", name="uq_recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="report.id", index=True)
    correspondent_id: int = Field(foreign_key="correspondent.id")
    role: str = Field(default="copy", max_length=16, description="requester / copy")


class ReportVersion(SQLModel, table=True):
    """What was validated, frozen: documents of a version are always rebuilt from this snapshot."""

    __table_args__ = (sa.UniqueConstraint("report_id", "version", name="uq_report_version"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="report.id", index=True)
    version: int
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    conclusion: str = Field(default="", sa_type=sa.Text)
    validated_at: dt.datetime
    validator_rpps: str = Field(max_length=11)
    document_id: str = Field(max_length=64, unique=True, description="CDA id root, minted once per version")
    created_at: dt.datetime = Field(default_factory=utcnow)


class Blob(SQLModel, table=True):
    """Content-addressed artefacts (CDA, PDF), in the database so every worker sees them."""

    sha256: str = Field(primary_key=True, max_length=64)
    media_type: str = Field(max_length=64)
    size: int
    content: bytes = Field(sa_type=sa.LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Document(SQLModel, table=True):
    """The artefacts built for one report version."""

    __table_args__ = (sa.UniqueConstraint("report_id", "version", name="uq_document_version"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="report.id", index=True)
    version: int
    document_id: str = Field(max_length=64, unique=True)
    cda_sha256: str = Field(foreign_key="blob.sha256", max_length=64)
    pdf_sha256: str = Field(foreign_key="blob.sha256", max_length=64)
    pdf_filename: str = Field(max_length=200)
    built_at: dt.datetime = Field(default_factory=utcnow)


# --- distribution ----------------------------------------------------------------------------------------


class Delivery(SQLModel, table=True):
    """One send of one version to one recipient over one channel, with its idempotency key."""

    __table_args__ = (
        # One send per action: a deletion (or a visibility update) of a version is a delivery of its own.
        sa.UniqueConstraint("report_id", "version", "channel", "recipient", "action", name="uq_delivery"),
        sa.CheckConstraint("attempts >= 0", name="ck_delivery_attempts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="report.id", index=True)
    version: int
    action: str = Field(default="initial", max_length=16, description="initial / replace / delete")
    channel: Channel = Field(sa_type=enum_column(Channel, "channel"))
    recipient: str = Field(max_length=254, description="'pfi', 'dmp', 'patient' or a correspondent address")
    route: str = Field(default="direct", max_length=16, description="direct, or 'pfi' when the PFI relays")
    status: DeliveryStatus = Field(sa_type=enum_column(DeliveryStatus, "status"))
    reason: str | None = Field(default=None, max_length=500, description="Why blocked or failed")
    attempts: int = 0
    idempotency_key: str = Field(max_length=64, unique=True, description="MSH-10, XDS uniqueId, Message-ID")
    external_id: str | None = Field(default=None, max_length=128)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class DeliveryEvent(SQLModel, table=True):
    """The status timeline of a delivery."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    status: DeliveryStatus = Field(sa_type=enum_column(DeliveryStatus, "status"))
    detail: str | None = Field(default=None, max_length=500)
    at: dt.datetime = Field(default_factory=utcnow)


class AppliedReceipt(SQLModel, table=True):
    """A receipt applied to a copy: one of each kind per copy and per message it names, whatever the
    receipt's own control id (a replay under a new MSH-10 finds it here and changes nothing)."""

    __table_args__ = (
        sa.UniqueConstraint("delivery_id", "kind", "message_key", name="uq_appliedreceipt_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id")
    kind: str = Field(max_length=8, description="ZAM trigger: Z01, Z02, Z03")
    message_key: str = Field(max_length=64, description="The MSH-10 of our message the receipt names")
    inbound_message_id: int | None = Field(
        default=None, foreign_key="inboundmessage.id", description="The ZAM that carried it"
    )
    applied_at: dt.datetime = Field(default_factory=utcnow)


class RetryRequest(SQLModel, table=True):
    """An administrator's retry as `ris delivery retry` recorded it after checking who acts: the
    `delivery-retry` run it starts carries only this id, so that no run parameter can name an actor or a
    new address. Carried out by one run at most (`run_id`)."""

    id: int | None = Field(default=None, primary_key=True)
    requested_at: dt.datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=64, description="The acting user, checked by the CLI")
    reason: str = Field(max_length=200)
    delivery_ids: list[int] | None = Field(default=None, sa_type=JSON)
    report_id: str | None = Field(default=None, max_length=64)
    channel: Channel | None = Field(default=None, sa_type=enum_column(Channel, "channel"))
    since: dt.date | None = None
    new_address: str | None = Field(default=None, max_length=254, description="--to: the new MSSanté address")
    run_id: str | None = Field(default=None, max_length=36, description="The flow run that carried it out")


class AuditEntry(SQLModel, table=True):
    """Append-only audit trail: who did what to which object, and when (rules 4, 16, 37...). The database
    itself refuses UPDATE and DELETE (triggers of migration 0010). Writers only insert: the hash chain over
    the entries is extended afterwards, in AuditSeal, by the sealer (ris.store.audit)."""

    __table_args__ = (sa.Index("ix_auditentry_seal_order", "xact_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Until people log in, the declared actor is only a claim: the OS account and host are kept beside it.
    os_user: str | None = Field(default=None, max_length=64)
    host: str | None = Field(default=None, max_length=128)
    # The writing transaction's id, the seal order: on PostgreSQL the column's default is
    # pg_current_xact_id() (migration 0011), so no writer asks for it (FetchedValue: the ORM leaves the
    # column to the database); NULL on SQLite, whose writers are serialised (id order is commit order).
    xact_id: int | None = Field(
        default=None, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": sa.FetchedValue()}
    )


class AuditSeal(SQLModel, table=True):
    """The hash chain over the audit trail (ris.store.audit_chain), in seal order: the seal at `position`
    n chains entry `entry_id` to the seal at n - 1. Written by the sealer only, once no entry can come
    before it any more; insert-only like the entries (triggers of migration 0011)."""

    position: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    entry_id: int = Field(foreign_key="auditentry.id", unique=True, index=True)
    # The entry's xact_id, copied: where the next seal starts, even if the entry were deleted.
    xact_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


# --- outbound identity feed -------------------------------------------------------------------------------


class OutboundStatus(StrEnum):
    pending = "pending"
    acknowledged = "acknowledged"
    failed = "failed"


class OutboundMessage(SQLModel, table=True):
    """Outbox of the PAM-FR identity feed (INS rule 27): written in the unit of work of the identity change,
    sent later in creation order per patient. `snapshot` is the identity as the change left it; the ER7 is
    rendered once from it at the first attempt and every retry resends those exact bytes (same MSH-10)."""

    __table_args__ = (sa.CheckConstraint("attempts >= 0", name="ck_outbound_attempts"),)

    id: int | None = Field(default=None, primary_key=True)
    destination: str = Field(max_length=32, index=True, description="'pfi'")
    message_type: str = Field(max_length=24, description="ADT^A31^ADT_A05 / ADT^A47^ADT_A30")
    control_id: str = Field(max_length=64, unique=True, description="MSH-10, minted once at enqueue")
    patient_id: int = Field(foreign_key="patient.id", index=True)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    payload: str | None = Field(default=None, sa_type=sa.Text, description="ER7, frozen at the first attempt")
    status: OutboundStatus = Field(
        default=OutboundStatus.pending, sa_type=enum_column(OutboundStatus, "status"), index=True
    )
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500, description="ACK codes and locations only")
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


# --- execution: which worker runs what --------------------------------------------------------------------


class EngineWorker(SQLModel, table=True):
    """A running engine worker process. It renews its lease while alive; the claims of a worker whose
    lease ran out are taken over, and its runs resumed (nothing is lost when a worker is killed)."""

    id: str = Field(primary_key=True, max_length=32, description="Minted at the worker's start")
    name: str = Field(max_length=128, description="The Prefect worker name")
    host: str = Field(max_length=128)
    pid: int
    started_at: dt.datetime = Field(default_factory=utcnow)
    lease_until: dt.datetime = Field(index=True)
    stopped_at: dt.datetime | None = None


class RunClaim(SQLModel, table=True):
    """Who runs the flows of one subject (a report version) right now: two workers never run the same
    version at once. A claim is live while its worker's lease is; `released_at` ends it."""

    subject: str = Field(primary_key=True, max_length=160, description="e.g. report:CR-1:v2")
    worker_id: str = Field(foreign_key="engineworker.id", max_length=32, index=True)
    flow_run_id: str = Field(max_length=36)
    purpose: str = Field(default="run", max_length=16, description="run, or recovery of an orphaned run")
    claimed_at: dt.datetime = Field(default_factory=utcnow)
    released_at: dt.datetime | None = None


# --- Annuaire Santé directory (RIS.ANN.01–05) ---------------------------------------------------------------


class DirectoryPerson(SQLModel, table=True):
    """A health professional of the public extraction « PS_LibreAcces_Personne_activite », keyed by RPPS;
    `structures` holds one entry per activity (the file's other lines of the same person)."""

    __table_args__ = (sa.CheckConstraint("length(rpps) = 11", name="ck_directoryperson_rpps"),)

    id: int | None = Field(default=None, primary_key=True)
    rpps: str = Field(max_length=11, unique=True)
    civility: str | None = Field(default=None, max_length=16, description="Code civilité d'exercice (DR, PR)")
    family: str = Field(max_length=100)
    given: str | None = Field(default=None, max_length=100)
    family_key: str = Field(max_length=100, index=True, description="Search key: upper case, no accents")
    given_key: str | None = Field(default=None, max_length=100)
    profession_code: str | None = Field(default=None, max_length=8)
    profession: str | None = Field(default=None, max_length=100)
    specialty_code: str | None = Field(default=None, max_length=16, description="Code savoir-faire")
    specialty: str | None = Field(default=None, max_length=200)
    structures: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    content_hash: str = Field(max_length=32, description="What the file said: unchanged lines write nothing")
    import_run: str = Field(max_length=32, description="The last import that read this person")
    updated_at: dt.datetime = Field(default_factory=utcnow)


class DirectoryMailbox(SQLModel, table=True):
    """An MSSanté mailbox of the MSSanté address extraction: personal (PER) ones carry the owner's RPPS."""

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=254, unique=True)
    kind: str = Field(max_length=8, description="Type de BAL: PER, ORG, APP, CAB")
    rpps: str | None = Field(default=None, max_length=11, index=True)
    organisation: str | None = Field(default=None, max_length=200)
    service: str | None = Field(default=None, max_length=200)
    import_run: str = Field(max_length=32, description="The last import that listed it; others are withdrawn")
