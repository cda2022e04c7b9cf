"""RIS.PORT.01: the portability export holds every patient (identity and status history), report (all
versions), document (CDA, PDF), delivery timeline and audit event, as JSON Lines with a JSON Schema per
file, a README and a manifest of counts and SHA-256; the re-reader proves it complete and finds any loss."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlmodel import Session, func, select

from ris import documents
from ris.export.schemas import ENTITIES
from ris.export.verify import ExportIncomplete, verify_export
from ris.export.writer import LINES, ExportRefused, Scope, count_scope, write_export
from ris.lifecycle import reports
from ris.site.settings import SiteSettings
from ris.store import audit, deliveries
from ris.store import documents as stored_documents
from ris.store.models import (
    AuditEntry,
    Channel,
    Delivery,
    DeliveryStatus,
    Document,
    IdentityStatus,
    IdentityStatusChange,
    Patient,
    Report,
    ReportVersion,
)
from ris.store.reports import load_bundle
from tests import factories
from tests.cli_process import isolated_env, run_ris
from tests.conftest import add_user


def history(session: Session) -> list[str]:
    """Two reports with built documents, one replaced (two versions), deliveries with timelines, an
    identity status change; returns the report ids."""
    settings = SiteSettings()
    first = factories.validated_report(session)
    second = factories.validated_report(session, qualified=False)
    session.add(
        IdentityStatusChange(
            patient_id=second.patient.id, previous=None, new=IdentityStatus.PROV, reason="worklist", by="test"
        )
    )
    reports.replace(
        session, first.report.id, first.report.body + "\nAddendum.", None, factories.RADIOLOGIST_RPPS
    )
    session.commit()
    for report_id, version in ((first.report.id, 1), (first.report.id, 2), (second.report.id, 1)):
        built = documents.build(load_bundle(session, report_id, version), settings)
        stored_documents.store(session, report_id, version, built)
        row = Delivery(
            report_id=report_id,
            version=version,
            channel=Channel.dmp,
            recipient="dmp",
            status=DeliveryStatus.pending,
            idempotency_key=f"{report_id}-{version}-dmp",
        )
        session.add(row)
        session.flush()
        deliveries.set_status(session, row, DeliveryStatus.sent)
        deliveries.set_status(session, row, DeliveryStatus.acknowledged)
    session.commit()
    return [first.report.id, second.report.id]


def read_lines(folder: Path, entity: str) -> list[dict]:
    return [
        json.loads(line) for line in (folder / f"{entity}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_export_holds_everything_and_re_reads_complete(session, tmp_path):
    report_ids = history(session)
    out = tmp_path / "export"
    manifest = write_export(session, out)

    verified = verify_export(out)
    assert verified.counts == manifest["counts"]
    table_counts = {
        "patients": session.exec(select(func.count()).select_from(Patient)).one(),
        "reports": session.exec(select(func.count()).select_from(Report)).one(),
        "documents": session.exec(select(func.count()).select_from(Document)).one(),
        "deliveries": session.exec(select(func.count()).select_from(Delivery)).one(),
        "audit": session.exec(select(func.count()).select_from(AuditEntry)).one(),
    }
    assert {e: manifest["counts"][e] for e in ENTITIES} == table_counts
    assert manifest["counts"]["document_files"] == 2 * table_counts["documents"] == 6

    # Every file is listed with the SHA-256 of its bytes; each line validates against its schema.
    for path, listed in manifest["files"].items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == listed["sha256"]
    for entity in ENTITIES:
        validator = Draft202012Validator(json.loads((out / "schemas" / f"{entity}.schema.json").read_text()))
        for line in read_lines(out, entity):
            validator.validate(line)

    # The report carries all its versions; the documents are the stored bytes, named by ids only.
    by_id = {r["id"]: r for r in read_lines(out, "reports")}
    assert [v["version"] for v in by_id[report_ids[0]]["versions"]] == [1, 2]
    for line in read_lines(out, "documents"):
        stored = session.exec(select(Document).where(Document.document_id == line["document_id"])).one()
        assert (out / line["pdf_file"]["path"]).read_bytes()[:5] == b"%PDF-"
        assert (
            line["cda_file"]["sha256"] == stored.cda_sha256
            and line["pdf_file"]["sha256"] == stored.pdf_sha256
        )
        assert "PAT-TROIS" not in line["pdf_file"]["path"]
    timeline = [e["status"] for e in read_lines(out, "deliveries")[0]["timeline"]]
    assert timeline == ["sent", "acknowledged"]
    patients = {p["id"]: p for p in read_lines(out, "patients")}
    assert any(p["status_history"] for p in patients.values())
    assert "RIS.PORT.01" in (out / "README.md").read_text(encoding="utf-8")


def test_the_re_reader_finds_a_changed_a_missing_and_an_extra_file(session, tmp_path):
    history(session)
    out = tmp_path / "export"
    write_export(session, out)
    pdf = next(out.glob("documents/*/v1/*.pdf"))
    pdf.write_bytes(pdf.read_bytes() + b"%")
    (out / "audit.jsonl").unlink()
    (out / "notes.txt").write_text("not exported")
    with pytest.raises(ExportIncomplete) as caught:
        verify_export(out)
    problems = "\n".join(caught.value.problems)
    assert f"{pdf.relative_to(out).as_posix()}: content differs" in problems
    assert "audit.jsonl: listed in the manifest but missing" in problems
    assert "notes.txt: in the folder but not in the manifest" in problems


def test_a_line_that_loses_a_field_or_a_reference_is_found(session, tmp_path):
    history(session)
    out = tmp_path / "export"
    write_export(session, out)
    # Rewrite reports.jsonl without a field and the manifest with its new hash: only the content checks
    # can find it now.
    lines = read_lines(out, "reports")
    del lines[0]["versions"]
    content = "".join(json.dumps(line) + "\n" for line in lines[:1]).encode()
    (out / "reports.jsonl").write_bytes(content)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["reports.jsonl"] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportIncomplete) as caught:
        verify_export(out)
    problems = "\n".join(caught.value.problems)
    assert "reports.jsonl line 1: (line): 'versions' is a required property" in problems
    assert "is not in reports.jsonl" in problems  # the documents and deliveries of the dropped report
    assert "counts" in problems


def test_since_limits_the_history_depth(session, tmp_path):
    old, recent = history(session)
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    for report in session.exec(select(Report).where(Report.id == old)):
        report.updated_at = long_ago
        session.add(report)
    for version in session.exec(select(ReportVersion).where(ReportVersion.report_id == old)):
        version.validated_at = long_ago
        session.add(version)
    session.commit()
    out = tmp_path / "export"
    manifest = write_export(session, out, since=dt.date(2024, 1, 1))
    verify_export(out)
    assert [r["id"] for r in read_lines(out, "reports")] == [recent]
    assert {d["report_id"] for d in read_lines(out, "deliveries")} == {recent}
    assert manifest["since"] == "2024-01-01" and manifest["counts"]["documents"] == 1


def test_an_export_is_never_merged_into_a_folder_that_holds_files(session, tmp_path):
    folder = tmp_path / "previous"
    folder.mkdir()
    (folder / "old.txt").write_text("x")
    with pytest.raises(ExportRefused, match="must be a new or empty folder"):
        write_export(session, folder)
    assert [p.name for p in folder.iterdir()] == ["old.txt"]


def test_memory_stays_flat_when_the_history_grows(session, tmp_path):
    def peak_for(rows: int, name: str) -> int:
        for n in range(rows):
            audit.record(
                session, actor="test", action="report.read", object_type="report", object_id=f"R{n}", n=n
            )
        session.commit()
        tracemalloc.start()
        write_export(session, tmp_path / name)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak

    small = peak_for(1_000, "small")
    large = peak_for(9_000, "large")  # ten times the audit trail
    assert large < 2 * small, (small, large)


def test_cli_exports_with_a_progress_bar_and_re_reads(session, db_url, tmp_path):
    history(session)
    add_user(db_url, "admin.site", "administrator")  # export
    env = isolated_env(tmp_path / "data", RIS_DATABASE_URL=db_url, RIS_DECLARED_ACTORS="allowed")
    out = tmp_path / "export"
    written = run_ris(env, "export", "--out", str(out), "--by", "admin.site")
    assert written.returncode == 0, written.stderr
    assert "patients" in written.stdout and f"export written to {out}" in written.stdout
    reread = run_ris(env, "import-export", str(out), "--json")
    assert reread.returncode == 0, reread.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert json.loads(reread.stdout)["counts"] == manifest["counts"]

    again = run_ris(env, "export", "--out", str(out), "--by", "admin.site")
    assert again.returncode == 1 and "must be a new or empty folder" in again.stderr
    (out / "patients.jsonl").write_text("")
    broken = run_ris(env, "import-export", str(out))
    assert broken.returncode == 1 and "patients.jsonl: content differs" in broken.stderr


@pytest.mark.slow
async def test_the_export_deployment_writes_and_verifies_a_new_folder(session, prefect_server, tmp_path):
    from flows.export import portability_export

    history(session)
    result = await portability_export(out=str(tmp_path / "nightly"))
    assert result["folder"] == str(tmp_path / "nightly") and result["counts"]["reports"] == 2
    assert verify_export(tmp_path / "nightly").counts == result["counts"]


def test_every_schema_has_its_writer_and_its_count(session: Session):
    """One list of exported files (the schemas) drives what is written and what the progress bar counts."""
    assert list(LINES) == list(ENTITIES)
    assert set(count_scope(session, Scope(as_of=dt.datetime.now(dt.UTC)))) == set(ENTITIES)
