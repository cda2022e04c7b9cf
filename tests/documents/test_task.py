"""The build-documents task body and the `ris document build` command, against the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from cli.document import app
from ris.documents import DocumentError
from ris.store import blobs
from ris.store.models import AuditEntry, Blob, Document
from tasks.documents import build_documents
from tests import factories

pytestmark = pytest.mark.slow


def count(session: Session, model, *where) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


async def test_builds_once_and_returns_ids_and_hashes_only(saved_site, session: Session) -> None:
    bundle = factories.validated_report(session)
    report_id = bundle.report.id
    first = await build_documents.fn(report_id, 1)
    assert set(first) == {"document_id", "cda_sha256", "pdf_sha256"}
    assert first["document_id"] == bundle.version.document_id
    assert "PAT-TROIS" not in str(first)
    assert await build_documents.fn(report_id, 1) == first  # stored: returned, not rebuilt
    assert count(session, Document, Document.report_id == report_id) == 1
    assert (
        count(session, AuditEntry, AuditEntry.action == "document.build", AuditEntry.object_id == report_id)
        == 1
    )
    assert blobs.get(session, first["pdf_sha256"]).startswith(b"%PDF-1.4")
    assert b"<ClinicalDocument" in blobs.get(session, first["cda_sha256"])


async def test_refused_report_stores_nothing(saved_site, session: Session) -> None:
    bundle = factories.validated_report(session)
    bundle.patient.ins_matricule = bundle.patient.ins_oid = None  # QUAL without its INS
    session.add(bundle.patient)
    session.commit()
    blobs_before = count(session, Blob)
    with pytest.raises(DocumentError, match=r"patient\.ins_matricule"):
        await build_documents.fn(bundle.report.id, 1)
    assert count(session, Document) == 0
    assert count(session, Blob) == blobs_before
    assert count(session, AuditEntry, AuditEntry.action == "document.build") == 0


def test_cli_writes_the_cda_and_the_pdf(saved_site, session: Session, tmp_path: Path) -> None:
    bundle = factories.validated_report(session)
    runner = CliRunner()
    result = runner.invoke(app, ["build", bundle.report.id, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    row = session.exec(select(Document).where(Document.report_id == bundle.report.id)).one()
    pdf, cda = tmp_path / "out" / row.pdf_filename, (tmp_path / "out" / row.pdf_filename).with_suffix(".xml")
    assert f"CDA: {cda}" in result.output and f"PDF: {pdf}" in result.output
    assert pdf.read_bytes() == blobs.get(session, row.pdf_sha256)
    assert cda.read_bytes() == blobs.get(session, row.cda_sha256)
    again = runner.invoke(
        app, ["build", bundle.report.id, "--out", str(tmp_path / "again"), "--version", "1"]
    )
    assert again.exit_code == 0, again.output
    assert count(session, Document, Document.report_id == bundle.report.id) == 1
    missing = runner.invoke(app, ["build", bundle.report.id, "--out", str(tmp_path), "--version", "7"])
    assert missing.exit_code == 1 and "has no validated version 7" in missing.output
