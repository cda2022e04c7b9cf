"""Write a portability export (RIS.PORT.01) into an empty folder, streaming: rows are read in batches and
written one line at a time, documents one at a time, so memory stays flat whatever the history's size.

The scope is fixed once, at `as_of`: rows created later are left for the next export, so every reference
inside the export resolves (a delivery never points to a report the export lacks). `since` limits the
history depth: the reports validated or changed since that day, their patients and the patients changed
since, the audit events since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.export.readme import readme
from ris.export.schemas import ENTITIES, SCHEMAS
from ris.export.scope import Scope
from ris.store.db import get_engine
from ris.store.models import (
    AuditEntry,
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


class _HashingFile:
    """A file written once, its SHA-256 and size computed on the way."""

    def __init__(self, root: Path, relative: str) -> None:
        self.relative = relative
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("wb")
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


def _reports_in_scope(scope: Scope) -> Any:
    stmt = select(Report.id).where(Report.created_at <= scope.as_of)
    if scope.since_at is not None:
        recent = select(ReportVersion.report_id).where(ReportVersion.validated_at >= scope.since_at)
        stmt = stmt.where(sa.or_(Report.updated_at >= scope.since_at, Report.id.in_(recent)))
    return stmt


def _patients_in_scope(scope: Scope) -> Any:
    stmt = select(Patient).where(Patient.created_at <= scope.as_of)
    if scope.since_at is not None:
        of_reports = select(Exam.patient_id).join(Report, Report.exam_id == Exam.id)
        of_reports = of_reports.where(Report.id.in_(_reports_in_scope(scope)))
        stmt = stmt.where(sa.or_(Patient.updated_at >= scope.since_at, Patient.id.in_(of_reports)))
    return stmt


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
    stmt = select(AuditEntry).where(AuditEntry.at <= scope.as_of)
    if scope.since_at is not None:
        stmt = stmt.where(AuditEntry.at >= scope.since_at)
    for entry in _stream(session, stmt.order_by(AuditEntry.id)):
        yield _json(entry)


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
    audit = select(AuditEntry.id).where(AuditEntry.at <= scope.as_of)
    if scope.since_at is not None:
        audit = audit.where(AuditEntry.at >= scope.since_at)
    return {
        "patients": count(_patients_in_scope(scope)),
        "reports": count(reports),
        "documents": count(select(Document.id).where(Document.report_id.in_(reports))),
        "deliveries": count(
            select(Delivery.id).where(Delivery.report_id.in_(reports), Delivery.created_at <= scope.as_of)
        ),
        "audit": count(audit),
    }


def write_export(
    session: Session,
    out: Path,
    *,
    since: dt.date | None = None,
    zone: str = "UTC",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export into `out` (created, or empty) and return its manifest."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportRefused(f"--out {out}: must be a new or empty folder (an export is never merged)")
    out.mkdir(parents=True, exist_ok=True)
    scope = Scope(as_of=utcnow(), since=since, zone=zone)
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
        "counts": {**export.counts, "document_files": document_files},
        "files": dict(sorted(export.files.items())),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def export_database(
    out: Path,
    *,
    since: dt.date | None = None,
    zone: str = "UTC",
    progress: Progress | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """`write_export` in a read-only session of its own: not a unit of work, which on SQLite would hold the
    write lock (and stall every run) for as long as the export takes."""
    with Session(get_engine(url)) as session:
        return write_export(session, out, since=since, zone=zone, progress=progress)
