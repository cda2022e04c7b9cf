"""Building the PDF/A-1b and the CDA R2 N1 of a validated version, once."""

from __future__ import annotations

import asyncio

from prefect import task
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from blocks.site import load_site_settings
from ris import documents
from ris.store import audit, blobs
from ris.store.db import session_scope
from ris.store.models import Document
from ris.store.reports import load_bundle

CDA_MEDIA_TYPE = "text/xml"
PDF_MEDIA_TYPE = "application/pdf"


def find_document(session: Session, report_id: str, version: int) -> Document | None:
    stmt = select(Document).where(Document.report_id == report_id, Document.version == version)
    return session.exec(stmt).first()


def summary(row: Document) -> dict[str, str]:
    """Ids and hashes only: the file name carries the patient's name."""
    return {"document_id": row.document_id, "cda_sha256": row.cda_sha256, "pdf_sha256": row.pdf_sha256}


def store(session: Session, report_id: str, version: int, built: documents.BuiltDocuments) -> Document:
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


# No retries: a refused report (DocumentError) is refused again, identically, on every attempt.
@task(name="build-documents", task_run_name="build-documents-{report_id}-v{version}")
async def build_documents(report_id: str, version: int) -> dict[str, str]:
    """Build and store the documents of one version, or return the ones already stored.

    Raises DocumentError (field and rule named, no health data) before anything is stored."""
    with session_scope() as session:
        existing = find_document(session, report_id, version)
        if existing is not None:
            return summary(existing)
        bundle = load_bundle(session, report_id, version)
    settings = await load_site_settings()
    # ~0.2 CPU-s of rendering: off the event loop, so that the other tasks' I/O keeps flowing.
    built = await asyncio.to_thread(documents.build, bundle, settings)
    try:
        with session_scope() as session:
            return summary(store(session, report_id, version, built))
    except IntegrityError:  # a concurrent run stored the same version first: same bytes, keep its row
        with session_scope() as session:
            winner = find_document(session, report_id, version)
            if winner is None:
                raise
            return summary(winner)
