"""Write a portability export (RIS.PORT.01) into an empty folder, streaming: rows are read in batches and
written one line at a time, documents one at a time, so memory stays flat whatever the history's size.

The scope is fixed once, at `as_of`: rows created later are left for the next export, so every reference
inside the export resolves (a delivery never points to a report the export lacks). `since` limits the
history depth: the reports validated or changed since that day, their patients and the patients changed
since, the audit events since. `rpps` limits it to one professional (RIS.PORT.01): the reports they
produced or received (`scope.PROFESSIONAL_RULE`), their patients only, and the audit events about the
exported reports, their exams, deliveries and patients only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.export.readme import readme
from ris.export.schemas import ENTITIES, SCHEMAS
from ris.export.scope import PROFESSIONAL_RULE, RPPS_PATTERN, Scope
from ris.store.db import get_engine
from ris.store.models import (
    AuditEntry,
    AuditSeal,
    Blob,
    Correspondent,
    Delivery,
    DeliveryEvent,
    Document,
    Exam,
    IdentityStatusChange,
    Patient,
    PatientRefusal,
    Report,
    ReportRecipient,
    ReportVersion,
    utcnow,
)

FORMAT = "ris-portability-export/1"
MANIFEST = "manifest.json"
BATCH = 200  # rows fetched per round trip
Progress = Callable[[str, int], None]  # (entity, rows just written)


class ExportRefused(ValueError):
    """The export cannot be written where it was asked (the folder is not empty...)."""


def _private_file(path: Path) -> BinaryIO:
    """A new file only its owner may read (0600), in folders only its owner may list (0700): an export
    holds health data, as the database and its backups do."""
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):  # each level, not only the last (mkdir's mode is the last one's)
        folder.mkdir(mode=0o700)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


class _HashingFile:
    """A file written once, its SHA-256 and size computed on the way."""

    def __init__(self, root: Path, relative: str) -> None:
        self.relative = relative
        self._file: BinaryIO = _private_file(root / relative)
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._sha.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"sha256": self._sha.hexdigest(), "size": self.size}


@dataclass
class _Export:
    root: Path
    progress: Progress | None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def write_file(self, relative: str, content: bytes) -> dict[str, Any]:
        out = _HashingFile(self.root, relative)
        out.write(content)
        self.files[relative] = out.close()
        return {"path": relative, **self.files[relative]}

    def write_lines(self, entity: str, lines: Iterator[dict[str, Any]]) -> None:
        out = _HashingFile(self.root, f"{entity}.jsonl")
        count = 0
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            count += 1
            if self.progress:
                self.progress(entity, 1)
        self.files[out.relative] = out.close()
        self.counts[entity] = count


def _json(row: Any) -> dict[str, Any]:
    return row.model_dump(mode="json")


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    """Rows in batches; each row is dropped from the session once yielded (flat memory)."""
    for row in session.exec(stmt.execution_options(yield_per=BATCH)):
        yield row
        session.expunge(row)


def _professionals_reports(rpps: str) -> Any:
    """The clause of the reports `rpps` produced or received (PROFESSIONAL_RULE)."""
    validated = select(ReportVersion.report_id).where(ReportVersion.validator_rpps == rpps)
    received = (
        select(ReportRecipient.report_id)
        .join(Correspondent, Correspondent.id == ReportRecipient.correspondent_id)
        .where(Correspondent.rpps == rpps)
    )
    requested = (
        select(Exam.id)
        .join(Correspondent, Correspondent.id == Exam.requester_id)
        .where(Correspondent.rpps == rpps)
    )
    return sa.or_(
        Report.author_rpps == rpps,
        Report.id.in_(validated),
        Report.id.in_(received),
        Report.exam_id.in_(requested),
    )


def _reports_in_scope(scope: Scope) -> Any:
    stmt = select(Report.id).where(Report.created_at <= scope.as_of)
    if scope.since_at is not None:
        recent = select(ReportVersion.report_id).where(ReportVersion.validated_at >= scope.since_at)
        stmt = stmt.where(sa.or_(Report.updated_at >= scope.since_at, Report.id.in_(recent)))
    if scope.rpps is not None:
        stmt = stmt.where(_professionals_reports(scope.rpps))
    return stmt


def _patients_in_scope(scope: Scope) -> Any:
    stmt = select(Patient).where(Patient.created_at <= scope.as_of)
    if scope.since_at is None and scope.rpps is None:
        return stmt
    of_reports = select(Exam.patient_id).join(Report, Report.exam_id == Exam.id)
    of_reports = of_reports.where(Report.id.in_(_reports_in_scope(scope)))
    if scope.rpps is not None:  # one professional's export: the patients of their reports, no other
        return stmt.where(Patient.id.in_(of_reports))
    return stmt.where(sa.or_(Patient.updated_at >= scope.since_at, Patient.id.in_(of_reports)))


def _audit_in_scope(scope: Scope) -> list[Any]:
    """The audit events an export holds: up to `as_of`, since `since`; for one professional, only those
    about the exported reports, their exams, deliveries and patients (ids are strings in the trail)."""
    where = [AuditEntry.at <= scope.as_of]
    if scope.since_at is not None:
        where.append(AuditEntry.at >= scope.since_at)
    if scope.rpps is not None:
        reports = _reports_in_scope(scope)
        exams = select(Exam).join(Report, Report.exam_id == Exam.id).where(Report.id.in_(reports))
        about = {
            "report": reports,
            "exam": exams.with_only_columns(Exam.accession_number),
            "delivery": select(sa.cast(Delivery.id, sa.String)).where(Delivery.report_id.in_(reports)),
            "patient": exams.with_only_columns(sa.cast(Exam.patient_id, sa.String)),
        }
        where.append(
            sa.or_(
                *(
                    sa.and_(AuditEntry.object_type == kind, AuditEntry.object_id.in_(ids))
                    for kind, ids in about.items()
                )
            )
        )
    return where


def _patients(session: Session, scope: Scope, _export: _Export) -> Iterator[dict[str, Any]]:
    for patient in _stream(session, _patients_in_scope(scope).order_by(Patient.id)):
        history = select(IdentityStatusChange).where(IdentityStatusChange.patient_id == patient.id)
        refusals = select(PatientRefusal).where(PatientRefusal.patient_id == patient.id)
        yield {
            **_json(patient),
            "status_history": [_json(r) for r in session.exec(history.order_by(IdentityStatusChange.id))],
            "refusals": [_json(r) for r in session.exec(refusals.order_by(PatientRefusal.id))],
        }


def _reports(session: Session, scope: Scope, _export: _Export) -> Iterator[dict[str, Any]]:
    in_scope = Report.id.in_(_reports_in_scope(scope))
    for report in _stream(session, select(Report).where(in_scope).order_by(Report.id)):
        exam = session.get(Exam, report.exam_id)
        requester = session.get(Correspondent, exam.requester_id) if exam.requester_id else None
        recipients = session.exec(
            select(ReportRecipient, Correspondent)
            .join(Correspondent, Correspondent.id == ReportRecipient.correspondent_id)
            .where(ReportRecipient.report_id == report.id)
            .order_by(ReportRecipient.id)
        )
        versions = select(ReportVersion).where(ReportVersion.report_id == report.id)
        yield {
            **_json(report),
            "exam": _json(exam),
            "requester": _json(requester) if requester else None,
            "recipients": [{**_json(r), "correspondent": _json(c)} for r, c in recipients],
            "versions": [_json(v) for v in session.exec(versions.order_by(ReportVersion.version))],
        }


def document_paths(report_id: str, version: int, document_id: str) -> tuple[str, str]:
    """Where the CDA and the PDF of a version go inside the export (ids only: the stored PDF file name
    carries the patient's name, which a folder listing would show)."""
    folder = f"documents/{report_id}/v{version}"
    return f"{folder}/{document_id}.cda.xml", f"{folder}/{document_id}.pdf"


def _documents(session: Session, scope: Scope, export: _Export) -> Iterator[dict[str, Any]]:
    in_scope = Document.report_id.in_(_reports_in_scope(scope))
    stmt = select(Document).where(in_scope).order_by(Document.report_id, Document.version)
    for document in _stream(session, stmt):
        cda_path, pdf_path = document_paths(document.report_id, document.version, document.document_id)
        refs = {}
        for name, path, digest in (
            ("cda_file", cda_path, document.cda_sha256),
            ("pdf_file", pdf_path, document.pdf_sha256),
        ):
            blob = session.get(Blob, digest)
            refs[name] = export.write_file(path, blob.content)
            session.expunge(blob)
        yield {**_json(document), **refs}


def _deliveries(session: Session, scope: Scope, _export: _Export) -> Iterator[dict[str, Any]]:
    in_scope = Delivery.report_id.in_(_reports_in_scope(scope))
    stmt = select(Delivery).where(in_scope, Delivery.created_at <= scope.as_of).order_by(Delivery.id)
    for delivery in _stream(session, stmt):
        events = select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery.id)
        yield {
            **_json(delivery),
            "timeline": [_json(e) for e in session.exec(events.order_by(DeliveryEvent.id))],
        }


def _audit(session: Session, scope: Scope, _export: _Export) -> Iterator[dict[str, Any]]:
    """Each entry with its seal (its place in the hash chain), null while it awaits sealing."""
    stmt = select(AuditEntry, AuditSeal).outerjoin(AuditSeal, AuditSeal.entry_id == AuditEntry.id)
    stmt = stmt.where(*_audit_in_scope(scope))
    for entry, seal in session.exec(stmt.order_by(AuditEntry.id).execution_options(yield_per=BATCH)):
        yield {**_json(entry), "seal": _json(seal) if seal else None}
        session.expunge(entry)
        if seal is not None:
            session.expunge(seal)


LINES: dict[str, Callable[[Session, Scope, _Export], Iterator[dict[str, Any]]]] = {
    "patients": _patients,
    "reports": _reports,
    "documents": _documents,
    "deliveries": _deliveries,
    "audit": _audit,
}


def count_scope(session: Session, scope: Scope) -> dict[str, int]:
    """How many lines each file will hold (for a progress bar)."""

    def count(stmt: Any) -> int:
        return session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()

    reports = _reports_in_scope(scope)
    audit = select(AuditEntry.id).where(*_audit_in_scope(scope))
    return {
        "patients": count(_patients_in_scope(scope)),
        "reports": count(reports),
        "documents": count(select(Document.id).where(Document.report_id.in_(reports))),
        "deliveries": count(
            select(Delivery.id).where(Delivery.report_id.in_(reports), Delivery.created_at <= scope.as_of)
        ),
        "audit": count(audit),
    }


def check_professional(session: Session, scope: Scope) -> None:
    """An export limited to a professional names one by RPPS who has reports in the scope: a mistyped
    number is refused rather than written as an empty export."""
    if scope.rpps is None:
        return
    if not RPPS_PATTERN.match(scope.rpps):
        raise ExportRefused(f"--rpps {scope.rpps}: must be the 11 digits of an RPPS number")
    found = session.exec(select(sa.func.count()).select_from(_reports_in_scope(scope).subquery())).one()
    if not found:
        raise ExportRefused(
            f"--rpps {scope.rpps}: no report produced or received by this professional in the scope "
            "(author, validator, requester or copy recipient): nothing to export"
        )


def prepare_folder(out: Path) -> None:
    """The export's folder: new (created 0700) or empty (made 0700); ExportRefused, in one line, for a
    folder that holds something, a file, or a place that cannot be written."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportRefused(f"--out {out}: must be a new or empty folder (an export is never merged)")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        out.chmod(0o700)  # an empty folder given by its owner is made private too
    except OSError as exc:  # --out under a file, or where the user may not write
        raise ExportRefused(f"--out {out}: the folder cannot be created ({exc.strerror or exc})") from exc


def write_export(
    session: Session,
    out: Path,
    *,
    since: dt.date | None = None,
    zone: str = "UTC",
    rpps: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export into `out` (created, or empty) and return its manifest."""
    scope = Scope(as_of=utcnow(), since=since, zone=zone, rpps=rpps)
    check_professional(session, scope)
    prepare_folder(out)
    export = _Export(out, progress)
    for entity in ENTITIES:  # the schemas' order: a line's references come before it
        export.write_file(
            f"schemas/{entity}.schema.json",
            json.dumps(SCHEMAS[entity], ensure_ascii=False, indent=2).encode(),
        )
        export.write_lines(entity, LINES[entity](session, scope, export))
    document_files = sum(1 for path in export.files if path.startswith("documents/"))
    export.write_file("README.md", readme(scope, export.counts, document_files).encode())
    manifest = {
        "format": FORMAT,
        "as_of": scope.as_of.isoformat(),
        "since": since.isoformat() if since else None,
        "timezone": zone,
        "professional": {"rpps": rpps, "holds": PROFESSIONAL_RULE} if rpps else None,
        "counts": {**export.counts, "document_files": document_files},
        "files": dict(sorted(export.files.items())),
    }
    with _private_file(out / MANIFEST) as file:
        file.write(json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
    return manifest


def export_database(
    out: Path,
    *,
    since: dt.date | None = None,
    zone: str = "UTC",
    rpps: str | None = None,
    progress: Progress | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """`write_export` in a read-only session of its own: not a unit of work, which on SQLite would hold the
    write lock (and stall every run) for as long as the export takes."""
    with Session(get_engine(url)) as session:
        return write_export(session, out, since=since, zone=zone, rpps=rpps, progress=progress)
