"""Worklist import: patients, correspondents, exams and reports from a documented JSON file.

The pydantic models below ARE the format: `docs/worklist.schema.json` is generated from them (a test keeps
the two equal). Each record is checked and stored on its own: a bad record is refused with the field and
the rule, and changes nothing; the good ones are kept. A record already stored with the same values is
"unchanged" (loading a file twice is harmless). A report still draft or provisional takes the file's new
values, and the load names the fields that changed (audited, field names only); any other record stored
with other values is refused (a worklist never rewrites a validated report, a patient or an exam).

A bulk load shares the store with live feeds (the PAM-FR listener): with `commit=True` it commits in
short batches and pauses between them, so that on SQLite a listener waiting for the write lock gets it
within a fraction of a second. A load stopped half-way (a database error, Ctrl-C) says which records it
committed; loading the same file again finishes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import Session, select

from ris.directory.referenced import directory_address
from ris.identity import registry
from ris.identity.actors import IDENTITY_WRITE, Actor
from ris.identity.birth_date import implausibility
from ris.identity.errors import IdentityRuleError
from ris.identity.nir import INS_OIDS, check_matricule
from ris.identity.status import holds_insi_traits
from ris.ids import new_oid
from ris.lifecycle import refusals, reports
from ris.site import specialties
from ris.site.settings import IntakeLimits
from ris.store import audit
from ris.store import refusals as stored_refusals
from ris.store.models import (
    Correspondent,
    Exam,
    IdentityStatus,
    Patient,
    RefusalChannel,
    Report,
    ReportRecipient,
    ReportStatus,
    utcnow,
)
from ris.store.reports import correspondent_by_rpps
from ris.text_rules import free_text, one_line
from ris.worklist import reader as worklist_reader

Rpps = Annotated[str, Field(pattern=r"^\d{11}$", description="RPPS number, 11 digits")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Oid = Annotated[str, Field(pattern=r"^[0-2](\.(0|[1-9]\d*))+$", max_length=64)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _free_text: ClassVar[frozenset[str]] = frozenset()  # the fields that may hold line breaks and tabs

    @field_validator("*")
    @classmethod
    def _no_control_character(cls, value: Any, info: ValidationInfo) -> Any:
        """Every text ends in a header or a one-line protocol field, but free text (ris.text_rules)."""
        check = free_text if info.field_name in cls._free_text else one_line
        for text in value if isinstance(value, list) else (value,):
            if isinstance(text, str):
                check(text)
        return value


class CorrespondentIn(_Record):
    rpps: Rpps
    family: Name
    given: Name | None = None
    title: str | None = Field("Dr", max_length=16)
    mss_address: str | None = Field(
        None, pattern=r"^[^@\s]+@[^@\s]+\.mssante\.fr$", description="MSSanté address"
    )
    organisation: str | None = Field(None, max_length=200)
    finess: str | None = Field(None, pattern=r"^\d{9}$")
    specialty_code: str | None = Field(
        None,
        json_schema_extra={"enum": sorted(specialties.IMAGING)},
        description="Radiologists: JDV_J01 specialty printed in the CDA (default G15_10/SM44)",
    )

    @field_validator("specialty_code")
    @classmethod
    def _imaging_specialty(cls, value: str | None) -> str | None:
        if value is not None and value not in specialties.IMAGING:
            raise ValueError(
                f"not an imaging specialty of JDV_J01 ({', '.join(sorted(specialties.IMAGING))})"
            )
        return value


class InsIn(_Record):
    matricule: str = Field(
        min_length=15, max_length=15, description="NIR or NIA: 13 characters + 2-digit key"
    )
    oid: str = Field(
        json_schema_extra={"enum": sorted(INS_OIDS)}, description="INS OID (.8 NIR, .9 NIA, .10 test)"
    )


class RefusalsIn(_Record):
    """The patient's refusals of MSSanté sending (mssante.md §4), stored at patient level."""

    mss_patient: bool = Field(False, description="Refuses the Mon espace santé mail (RIS.MSS.21)")
    mss_ps: bool = Field(False, description="Refuses mails to professionals by MSSanté (RIS.MSS.25)")


class PatientIn(_Record):
    ipp: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    birth_name: Name
    first_birth_given_name: Name
    birth_given_names: str | None = Field(None, max_length=200)
    birth_date: dt.date
    sex: Literal["M", "F", "U"]
    birth_place_code: str = Field(
        pattern=r"^[0-9][0-9AB][0-9]{3}$", description="INSEE COG, 99999 if unknown"
    )
    used_name: str | None = Field(None, max_length=100)
    used_given_name: str | None = Field(None, max_length=100)
    status: IdentityStatus = IdentityStatus.PROV
    ins: InsIn | None = None
    street: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=10)
    city: str | None = Field(None, max_length=100)
    refusals: RefusalsIn | None = Field(
        None,
        description="Patient-level refusals, recorded with the actor 'worklist'; every report of the patient "
        "follows them unless the report overrides them (refuse_mss_patient / refuse_mss_ps)",
    )

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth_date(cls, value: dt.date) -> dt.date:
        if (why := implausibility(value)) is not None:
            raise ValueError(f"birth date {why}")
        return value


class ExamIn(_Record):
    order_id: str = Field(min_length=1, max_length=64)
    accession_number: str = Field(min_length=1, max_length=64)
    study_instance_uid: Oid
    ipp: str
    requester_rpps: Rpps | None = None
    modality: str = Field(pattern=r"^[A-Z]{2,4}$", description="DICOM modality code")
    exam_code: str = Field(pattern=r"^\d{1,7}-\d$", description="LOINC code")
    exam_label: str = Field(min_length=1, max_length=200)
    ccam_code: str | None = Field(None, pattern=r"^[A-Z]{4}\d{3}$")
    encounter_class: Literal["O", "I", "E", "R", "N"] = "O"
    visit_number: str | None = Field(None, max_length=32)
    started_at: AwareDatetime = Field(description="ISO 8601 with its offset, e.g. 2026-11-20T09:30:00+01:00")
    ended_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ExamIn:
        if self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at: must not precede started_at")
        return self


class ReportIn(_Record):
    _free_text = frozenset({"body", "conclusion"})

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Report id; must not carry health data")
    accession_number: str
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)
    conclusion: str = ""
    author_rpps: Rpps
    status: Literal["draft", "provisional"] = "draft"
    provisional_since: AwareDatetime | None = None
    recipients: list[Rpps] = Field(default_factory=list, description="Correspondents in copy (RPPS)")
    announcement_required: bool = False
    dmp_blocked: bool = False
    refuse_mss_patient: bool | None = Field(
        None,
        description="Per-report override of the patient's refusal of the Mon espace santé mail (RIS.MSS.21): "
        "true refuses, false allows, absent or null follows the patient's refusals",
    )
    refuse_mss_ps: bool | None = Field(
        None,
        description="Per-report override of the patient's refusal of mails to professionals (RIS.MSS.25): "
        "true refuses, false allows, absent or null follows the patient's refusals",
    )
    mask_ps: bool = False
    invisible_legal_reps: bool = False
    secret_connection: bool = False
    confidentiality: Literal["N", "R", "V"] = "N"

    @field_validator("body", "conclusion")
    @classmethod
    def _within_the_site_maximum(cls, value: str, info: ValidationInfo) -> str:
        limits = (info.context or {}).get("limits") or IntakeLimits()
        if len(value) > limits.max_report_chars:
            raise ValueError(
                f"longer than {limits.max_report_chars} characters (site setting intake.max_report_chars)"
            )
        return value


class WorklistFile(BaseModel):
    """A worklist file: four optional lists, loaded in this order. Only used to publish the schema:
    records are validated one by one so that a bad one does not hold back the good ones."""

    model_config = ConfigDict(extra="forbid", title="RIS worklist")
    correspondents: list[CorrespondentIn] = Field(default_factory=list)
    patients: list[PatientIn] = Field(default_factory=list)
    exams: list[ExamIn] = Field(default_factory=list)
    reports: list[ReportIn] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **WorklistFile.model_json_schema()}


class RecordRefused(ValueError):
    pass


SECTIONS = ("correspondents", "patients", "exams", "reports")
UNCHANGED = "unchanged"  # what a store function returns for a record already stored as it is


@dataclass(frozen=True)
class Updated:
    """What a store function returns for a record it updated: its key and the fields that changed."""

    key: str
    fields: list[str]

    def __str__(self) -> str:
        return f"{self.key}: {', '.join(self.fields)}"


# Short transactions: a batch holds SQLite's write lock at most LOCK_BUDGET seconds, then the loader
# lets it go for PAUSE seconds: a waiting writer (it polls at least every 100 ms) gets in within a
# batch or two instead of waiting for the whole load.
LOCK_BUDGET = 0.05
PAUSE = 0.03


@dataclass
class LoadReport:
    stored: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in SECTIONS})
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    updated: list[str] = field(default_factory=list)  # `section[i] key: fields that changed`
    refused: list[str] = field(default_factory=list)  # the first `listed` refusals, one line each
    refused_count: int = 0  # every refusal: a broken file must not fill the memory with them
    listed: int = IntakeLimits().max_refusals_listed
    stopped: str | None = None  # why a committing load stopped before the end, and where
    fault: sa.exc.DBAPIError | None = None  # the database error that stopped it, if one did

    @property
    def loaded(self) -> dict[str, int]:
        """Records stored by this load, per section (committed ones when the load commits itself)."""
        return {section: len(indexes) for section, indexes in self.stored.items()}

    @property
    def ok(self) -> bool:
        return not self.refused_count and self.stopped is None

    def refuse(self, line: str) -> None:
        self.refused_count += 1
        if len(self.refused) < self.listed:
            self.refused.append(line)

    def which(self) -> str:
        """The stored records as `section[i-j]` ranges of their place in the file."""
        parts = [f"{section}[{_ranges(indexes)}]" for section, indexes in self.stored.items() if indexes]
        return ", ".join(parts) or "nothing"


def _ranges(indexes: list[int]) -> str:
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _differences(row: object, values: dict[str, Any]) -> list[str]:
    """The fields whose stored value is not the one these values would store (a null takes the table's
    default, as it did when the record was first stored)."""
    expected = type(row)(**values)
    return [name for name in values if getattr(row, name) != getattr(expected, name)]


def _changed(what: str, fields: list[str]) -> RecordRefused:
    """A record stored before with other values: refused (a worklist never rewrites what is stored)."""
    return RecordRefused(f"{what} already exists with other values ({', '.join(fields)})")


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(_place(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _store_correspondent(session: Session, rec: CorrespondentIn, actor: str) -> str:
    if known := correspondent_by_rpps(session, rec.rpps):
        values = rec.model_dump()
        if values["mss_address"] is None:  # the directory's address filled it in: not a change
            del values["mss_address"]
        if fields := _differences(known, values):
            raise _changed(f"rpps: correspondent {rec.rpps}", fields)
        return UNCHANGED
    row = Correspondent(**rec.model_dump())
    if row.mss_address is None:  # none in the worklist: the directory's, if it lists one (RIS.ANN.05)
        row.mss_address = directory_address(session, rec.rpps)
    session.add(row)
    session.flush()
    audit.record(
        session, actor=actor, action="correspondent.create", object_type="correspondent", object_id=row.id
    )
    return rec.rpps


def _patient_by_ipp(session: Session, ipp: str) -> Patient | None:
    return session.exec(select(Patient).where(Patient.ipp == ipp)).first()


def _store_patient(session: Session, rec: PatientIn, actor: str) -> str:
    """Identities of the RIS's own identity domain: created under rule 5, then given the status and the
    INS the domain already established (an INS only with RECUP or QUAL, its key checked, rule 17)."""
    who = Actor(actor, frozenset({IDENTITY_WRITE}))
    try:
        if rec.ins and not holds_insi_traits(rec.status):
            raise IdentityRuleError(
                "ins", f"an identity {rec.status.value} holds no INS", "INS rules 20 and 28"
            )
        if rec.status is not IdentityStatus.PROV and rec.ins is None and holds_insi_traits(rec.status):
            raise IdentityRuleError("ins", f"an identity {rec.status.value} comes with its INS", "INS rule 6")
        if rec.ins and rec.ins.oid not in INS_OIDS:
            raise IdentityRuleError("ins.oid", f"{rec.ins.oid!r} is not an INS OID", "INS rule 1")
        matricule = check_matricule(rec.ins.matricule, "ins.matricule") if rec.ins else None
        if known := _patient_by_ipp(session, rec.ipp):
            return _same_patient(session, known, rec, matricule)
        patient = registry.create_identity(
            session,
            who,
            **rec.model_dump(exclude={"ins", "status", "refusals"}),
            collection_mode="SM",
            source_domain="worklist",
        )
    except IdentityRuleError as exc:
        raise RecordRefused(str(exc)) from exc
    if matricule:
        patient.ins_matricule, patient.ins_oid = matricule, rec.ins.oid
        session.add(patient)
    if rec.status is not IdentityStatus.PROV:
        registry.set_status(
            session, patient, rec.status, "status established by the RIS identity domain", actor
        )
    if rec.refusals:
        # Recorded only where it changes the patient's current choice (refusals.record returns None).
        for channel, refused in (
            (RefusalChannel.mss_patient, rec.refusals.mss_patient),
            (RefusalChannel.mss_ps, rec.refusals.mss_ps),
        ):
            refusals.record(session, patient, channel, refused, actor, "recorded by the worklist import")
    return rec.ipp


def _same_patient(session: Session, known: Patient, rec: PatientIn, matricule: str | None) -> str:
    values = rec.model_dump(exclude={"ins", "status", "refusals"})
    values.update(status=rec.status, ins_matricule=matricule, ins_oid=rec.ins.oid if rec.ins else None)
    fields = _differences(known, values)
    if rec.refusals:
        current = stored_refusals.latest(stored_refusals.history(session, known.id))
        for channel, refused in (
            (RefusalChannel.mss_patient, rec.refusals.mss_patient),
            (RefusalChannel.mss_ps, rec.refusals.mss_ps),
        ):
            if current.get(channel.value, False) != refused:
                fields.append(f"refusals.{channel.name}")
    if fields:
        raise _changed(f"ipp: patient {rec.ipp}", fields)
    return UNCHANGED


def _store_exam(session: Session, rec: ExamIn, actor: str) -> str:
    patient = _patient_by_ipp(session, rec.ipp)
    if patient is None:
        raise RecordRefused(f"ipp: no patient {rec.ipp}")
    for name in ("order_id", "accession_number", "study_instance_uid"):
        if known := session.exec(select(Exam).where(getattr(Exam, name) == getattr(rec, name))).first():
            return _same_exam(session, known, rec, name, patient)
    requester = None
    if rec.requester_rpps:
        requester = correspondent_by_rpps(session, rec.requester_rpps)
        if requester is None:
            raise RecordRefused(f"requester_rpps: no correspondent {rec.requester_rpps}")
    row = Exam(
        **rec.model_dump(exclude={"ipp", "requester_rpps"}),
        patient_id=patient.id,
        requester_id=requester.id if requester else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor=actor, action="exam.create", object_type="exam", object_id=rec.accession_number
    )
    return rec.accession_number


def _same_exam(session: Session, known: Exam, rec: ExamIn, key: str, patient: Patient) -> str:
    values = rec.model_dump(exclude={"ipp", "requester_rpps"})
    fields = _differences(known, values)
    if known.patient_id != patient.id:
        fields.append("ipp")
    requester = session.get(Correspondent, known.requester_id) if known.requester_id else None
    if (requester.rpps if requester else None) != rec.requester_rpps:
        fields.append("requester_rpps")
    if fields:
        raise _changed(f"{key}: an exam with {getattr(rec, key)}", fields)
    return UNCHANGED


# A report's refusal overrides change through `ris.lifecycle.refusals.override` (who and when are kept
# beside them).
_OVERRIDES = {"refuse_mss_patient": RefusalChannel.mss_patient, "refuse_mss_ps": RefusalChannel.mss_ps}


def _same_report(session: Session, known: Report, rec: ReportIn, actor: str, seen: set[str]) -> str | Updated:
    """A report stored before. Still a draft or provisional: it takes the file's values and the changed
    fields are named (a reload never moves it back from provisional to draft: `ris report provisional`
    may have marked it). Validated or deleted, the engine owns it: other values are refused, its status is
    not compared. A report never moves to another exam. A report this load already met (`seen`: the file
    names it twice) is compared only: the first record wins, and loading the file again changes nothing."""
    values = rec.model_dump(exclude={"id", "accession_number", "recipients", "status", "provisional_since"})
    editable = known.status in reports.EDITABLE and known.id not in seen
    seen.add(known.id)
    if editable and rec.status == "provisional":
        if known.status is ReportStatus.draft:
            values["status"] = ReportStatus.provisional
            values["provisional_since"] = rec.provisional_since or utcnow()
        elif rec.provisional_since is not None:
            values["provisional_since"] = rec.provisional_since
    fields = _differences(known, values)
    exam = session.get(Exam, known.exam_id)
    if exam.accession_number != rec.accession_number:
        fields.append("accession_number")
    copies = session.exec(
        select(ReportRecipient, Correspondent.rpps)
        .join(Correspondent, ReportRecipient.correspondent_id == Correspondent.id)
        .where(ReportRecipient.report_id == known.id, ReportRecipient.role == "copy")
    ).all()
    requester = session.get(Correspondent, exam.requester_id) if exam.requester_id else None
    wanted = [
        rpps for rpps in dict.fromkeys(rec.recipients) if rpps != (requester.rpps if requester else None)
    ]
    if {rpps for _, rpps in copies} != set(wanted):
        fields.append("recipients")
    if not fields:
        return UNCHANGED
    if not editable or "accession_number" in fields:
        raise _changed(f"id: report {rec.id}", fields)
    if "author_rpps" in fields and correspondent_by_rpps(session, rec.author_rpps) is None:
        raise RecordRefused(f"author_rpps: no radiologist {rec.author_rpps}")
    if "recipients" in fields:
        people = [correspondent_by_rpps(session, rpps) for rpps in wanted]
        if None in people:
            raise RecordRefused(f"recipients: no correspondent {wanted[people.index(None)]}")
        for row, _ in copies:
            session.delete(row)
        session.flush()  # the unique (report, correspondent) rows gone before the new ones come
        session.add_all(
            ReportRecipient(report_id=known.id, correspondent_id=p.id, role="copy") for p in people
        )
    for name in set(fields) & set(_OVERRIDES):
        refusals.override(session, known, _OVERRIDES[name], values[name], actor)
    plain = {name: values[name] for name in fields if name in values and name not in _OVERRIDES}
    also = ("recipients",) if "recipients" in fields else ()
    reports.change_draft(session, known, plain, actor, "worklist", also=also)
    return Updated(rec.id, fields)


def _store_report(session: Session, rec: ReportIn, actor: str, seen: set[str]) -> str | Updated:
    # Locked as `ris report edit` and `validate` lock it: a reload and a validation never interleave.
    if known := session.get(Report, rec.id, with_for_update=True, populate_existing=True):
        return _same_report(session, known, rec, actor, seen)
    exam = session.exec(select(Exam).where(Exam.accession_number == rec.accession_number)).first()
    if exam is None:
        raise RecordRefused(f"accession_number: no exam {rec.accession_number}")
    if session.exec(select(Report).where(Report.exam_id == exam.id)).first():
        raise RecordRefused(f"accession_number: exam {rec.accession_number} already has a report")
    if correspondent_by_rpps(session, rec.author_rpps) is None:
        raise RecordRefused(f"author_rpps: no radiologist {rec.author_rpps}")
    copies = []
    for rpps in dict.fromkeys(rec.recipients):
        person = correspondent_by_rpps(session, rpps)
        if person is None:
            raise RecordRefused(f"recipients: no correspondent {rpps}")
        copies.append(person)
    status = ReportStatus(rec.status)
    since = rec.provisional_since or (utcnow() if status is ReportStatus.provisional else None)
    overridden = rec.refuse_mss_patient is not None or rec.refuse_mss_ps is not None
    row = Report(
        refusal_override_by=actor if overridden else None,
        refusal_override_at=utcnow() if overridden else None,
        **rec.model_dump(exclude={"accession_number", "recipients", "status", "provisional_since"}),
        exam_id=exam.id,
        set_id=new_oid(),
        status=status,
        provisional_since=since,
    )
    session.add(row)
    session.flush()
    if exam.requester_id:
        session.add(ReportRecipient(report_id=row.id, correspondent_id=exam.requester_id, role="requester"))
    for person in copies:
        if person.id != exam.requester_id:
            session.add(ReportRecipient(report_id=row.id, correspondent_id=person.id, role="copy"))
    audit.record(
        session,
        actor=actor,
        action="report.create",
        object_type="report",
        object_id=row.id,
        status=status.value,
    )
    seen.add(rec.id)
    return rec.id


Store = Callable[[Session, Any, str], str | Updated]  # stores one record: its key, UNCHANGED or Updated
_SECTIONS: list[tuple[str, type[_Record], Store]] = [
    ("correspondents", CorrespondentIn, _store_correspondent),
    ("patients", PatientIn, _store_patient),
    ("exams", ExamIn, _store_exam),
    ("reports", ReportIn, _store_report),  # given the load's `seen` set (see `load`)
]


def load(
    session: Session,
    data: dict[str, Any],
    *,
    actor: str = "worklist",
    commit: bool = False,
    stop: Callable[[], bool] | None = None,
    limits: IntakeLimits | None = None,
) -> LoadReport:
    """Store each good record in its own savepoint; refuse bad ones with `section[i] field: reason`.

    `commit=False`: everything stays in the caller's transaction. `commit=True`: short batches are
    committed as the load goes; a database error or an interruption stops the load, keeps what was
    committed and says where it stopped (`LoadReport.stopped`). `stop()` true (the user's Ctrl-C): the
    records stored so far are committed and the load stops before the next one. `limits`: the site's
    maxima (a report's text; refusals listed one by one)."""
    limits = limits or IntakeLimits()
    result = LoadReport(listed=limits.max_refusals_listed)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        result.refuse(f"{unknown[0]}: unknown section (expected {', '.join(SECTIONS)})")
        return result
    for section in SECTIONS:
        if not isinstance(data.get(section, []), list):
            result.refuse(f"{section}: must be a list of records")
            return result
    records = ((section, i, raw) for section in SECTIONS for i, raw in enumerate(data.get(section, [])))
    return _load(session, records, result, actor=actor, commit=commit, stop=stop, limits=limits)


def _load(
    session: Session,
    records: Iterable[tuple[str, int, Any]],
    result: LoadReport,
    *,
    actor: str,
    commit: bool,
    stop: Callable[[], bool] | None,
    limits: IntakeLimits,
) -> LoadReport:
    """The records, (section, index, raw) in the order sections load, stored as `load` says."""
    batch = _Batch(session, result) if commit else None
    where = "the start"
    try:
        seen: set[str] = set()  # the reports this load met (`_same_report`)
        stores = {
            section: (model, functools.partial(store, seen=seen) if store is _store_report else store)
            for section, model, store in _SECTIONS
        }
        for section, index, raw in records:
            where = f"{section}[{index}]"
            if batch and stop and stop():
                batch.commit()
                result.stopped = f"{where}: interrupted"
                return result
            model, store = stores[section]
            _one(session, result, section, index, raw, model, store, actor, batch, limits)
        if batch:
            batch.commit()
    except (sa.exc.DBAPIError, KeyboardInterrupt) as exc:
        if batch is None:
            raise
        session.rollback()  # the batch in progress: none of it was committed
        batch.forget()
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else _database_problem(exc)
        result.stopped = f"{where}: {reason}"
        result.fault = exc if isinstance(exc, sa.exc.DBAPIError) else None
    return result


def _one(
    session: Session,
    result: LoadReport,
    section: str,
    index: int,
    raw: Any,
    model: type[_Record],
    store: Store,
    actor: str,
    batch: _Batch | None,
    limits: IntakeLimits,
) -> None:
    """One record: validated, then stored in its own savepoint (a refusal undoes all of it)."""
    where = f"{section}[{index}]"
    try:
        record = model.model_validate(raw, context={"limits": limits})
    except ValidationError as exc:
        result.refuse(f"{where} {_describe(exc)}")
        return
    if batch:
        batch.turn()
    try:
        with session.begin_nested():
            outcome = store(session, record, actor)
    except RecordRefused as exc:
        result.refuse(f"{where} {exc}")
    except sa.exc.IntegrityError:
        result.refuse(f"{where} conflicts with a record another writer stored meanwhile")
    else:
        if outcome == UNCHANGED:
            result.unchanged[section] += 1
        elif isinstance(outcome, Updated):
            result.updated.append(f"{where} {outcome}")
            if batch:
                batch.updates += 1
        else:
            result.stored[section].append(index)
            if batch:
                batch.pending.append((section, index))


def _place(part: str | int) -> str:
    """A field name as the user can read it on one line: quoted when empty or not printable."""
    text = str(part)
    return text if text.isprintable() and text.strip() == text and text else json.dumps(text)


class _Batch:
    """The records stored since the last commit; commits once the write lock was held LOCK_BUDGET."""

    def __init__(self, session: Session, result: LoadReport) -> None:
        self.session, self.result = session, result
        self.pending: list[tuple[str, int]] = []
        self.updates = 0  # records updated since the last commit (the last ones of result.updated)
        self.started: float | None = None

    def turn(self) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        elif now - self.started >= LOCK_BUDGET:
            self.commit()
            time.sleep(PAUSE)  # let a waiting writer (a live feed) take the lock
            self.started = time.monotonic()

    def commit(self) -> None:
        self.session.commit()
        self.pending.clear()
        self.updates = 0

    def forget(self) -> None:
        for section, _index in reversed(self.pending):  # the last ones stored in their section
            self.result.stored[section].pop()
        self.pending.clear()
        del self.result.updated[len(self.result.updated) - self.updates :]
        self.updates = 0


def _database_problem(exc: sa.exc.DBAPIError) -> str:
    """The driver's own words (never a value: the engine hides parameters)."""
    return str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__


def load_file(
    session: Session,
    path: Path,
    *,
    actor: str = "worklist",
    commit: bool = False,
    stop: Callable[[], bool] | None = None,
    limits: IntakeLimits | None = None,
) -> LoadReport:
    """`load` of a worklist file, read with bounded memory (ris.worklist.reader): a file that cannot be
    read whole as a worklist (not UTF-8, not JSON, a record too large or nested too deep) is refused in one
    line (RecordRefused) before anything is stored."""
    limits = limits or IntakeLimits()
    result = LoadReport(listed=limits.max_refusals_listed)
    max_chars = limits.max_record_kb * 1024
    try:
        in_file = worklist_reader.outline(path, SECTIONS, max_chars)
    except UnicodeDecodeError as exc:
        raise RecordRefused(f"{path.name}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except worklist_reader.WorklistUnreadable as exc:
        raise RecordRefused(f"{path.name}: not a readable JSON worklist: {exc}") from exc
    except OSError as exc:
        raise RecordRefused(f"{path.name}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    except worklist_reader.WorklistShape as exc:
        result.refuse(str(exc))
        return result
    records = worklist_reader.records(path, SECTIONS, in_file, max_chars)
    return _load(session, records, result, actor=actor, commit=commit, stop=stop, limits=limits)
