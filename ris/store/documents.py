"""The stored documents of a version: one row per version, its CDA and PDF as content-addressed blobs."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ris.store import audit, blobs
from ris.store.db import in_unit_of_work
from ris.store.models import Document


class Built(Protocol):
    """What the store keeps of a version's built documents (`ris.documents.BuiltDocuments`): the store sits
    below the documents and names only the fields it reads."""

    pdf: bytes
    cda: bytes
    pdf_filename: str
    document_id: str


CDA_MEDIA_TYPE = "text/xml"
PDF_MEDIA_TYPE = "application/pdf"


def find(session: Session, report_id: str, version: int) -> Document | None:
    stmt = select(Document).where(Document.report_id == report_id, Document.version == version)
    return session.exec(stmt).first()


def summary(row: Document) -> dict[str, str]:
    """Ids and hashes only: the file name carries the patient's name."""
    return {"document_id": row.document_id, "cda_sha256": row.cda_sha256, "pdf_sha256": row.pdf_sha256}


def stored_summary(session: Session, report_id: str, version: int) -> dict[str, str] | None:
    row = find(session, report_id, version)
    return summary(row) if row is not None else None


def store(session: Session, report_id: str, version: int, built: Built) -> Document:
    """Keep the built documents of a version (audited). A second store of the same version raises
    IntegrityError at flush: the caller keeps the row stored first (same bytes)."""
    row = Document(
        report_id=report_id,
        version=version,
        document_id=built.document_id,
        cda_sha256=blobs.put(session, built.cda, CDA_MEDIA_TYPE),
        pdf_sha256=blobs.put(session, built.pdf, PDF_MEDIA_TYPE),
        pdf_filename=built.pdf_filename,
    )
    session.add(row)
    audit.record(
        session,
        actor="engine",
        action="document.build",
        object_type="report",
        object_id=report_id,
        version=version,
        document_id=built.document_id,
    )
    session.flush()
    return row


def keep(report_id: str, version: int, built: Built) -> dict[str, str]:
    """Store the built documents in their own unit of work, or, when a concurrent run of the same version
    stored its own first (same bytes), keep that one; returns the summary of the row kept."""
    try:
        return in_unit_of_work(lambda session: summary(store(session, report_id, version, built)))
    except IntegrityError:
        winner = in_unit_of_work(lambda session: find(session, report_id, version))
        if winner is None:
            raise
        return summary(winner)


def rebuilt(report_id: str, version: int, built: Built, reason: str) -> dict[str, str]:
    """Put documents rebuilt for the same version (same document id) in place of the stored ones, which
    never left, audited with the reason (INS rule 28 at send time)."""

    def put(session: Session) -> dict[str, str]:
        row = find(session, report_id, version)
        if row is None:
            raise LookupError(f"report {report_id} v{version}: no documents stored to rebuild")
        if built.document_id != row.document_id:
            raise ValueError(f"report {report_id} v{version}: a rebuild keeps the version's document id")
        row.cda_sha256 = blobs.put(session, built.cda, CDA_MEDIA_TYPE)
        row.pdf_sha256 = blobs.put(session, built.pdf, PDF_MEDIA_TYPE)
        session.add(row)
        audit.record(
            session,
            actor="engine",
            action="document.rebuild",
            object_type="report",
            object_id=report_id,
            version=version,
            document_id=row.document_id,
            reason=reason,
        )
        return summary(row)

    return in_unit_of_work(put)
