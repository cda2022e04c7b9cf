"""RIS.PORT.01 « le professionnel de santé concerné »: `ris export --rpps N` (and the portability-export
flow's `rpps`) holds only the reports that professional produced (author, validator) or received
(requester, copy recipient), their patients, documents, deliveries and the audit events about them, with
the same manifest (which names the filter, as the README does); the export re-reads complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from ris import documents
from ris.export.verify import verify_export
from ris.export.writer import ExportRefused, write_export
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store import documents as stored_documents
from ris.store.models import Channel, Delivery, DeliveryStatus, Report
from ris.store.reports import ReportBundle, load_bundle
from tests import factories
from tests.cli_process import isolated_env, run_ris


def _two_reports(session: Session) -> tuple[ReportBundle, ReportBundle]:
    """Two validated reports of two patients by the same radiologist, each with its own requester and
    copy recipient, with their documents built and a DMP delivery each."""
    bundles = (factories.validated_report(session, copies=1), factories.validated_report(session, copies=1))
    for bundle in bundles:
        built = documents.build(load_bundle(session, bundle.report.id), SiteSettings())
        stored_documents.store(session, bundle.report.id, 1, built)
        row = Delivery(
            report_id=bundle.report.id,
            version=1,
            channel=Channel.dmp,
            recipient="dmp",
            status=DeliveryStatus.pending,
            idempotency_key=f"{bundle.report.id}-dmp",
        )
        session.add(row)
        session.flush()
        deliveries.set_status(session, row, DeliveryStatus.sent)
    session.commit()
    return bundles


def _lines(folder: Path, entity: str) -> list[dict]:
    return [
        json.loads(line) for line in (folder / f"{entity}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def _ids(folder: Path) -> dict[str, set]:
    return {
        "reports": {line["id"] for line in _lines(folder, "reports")},
        "patients": {line["id"] for line in _lines(folder, "patients")},
        "documents": {line["report_id"] for line in _lines(folder, "documents")},
        "deliveries": {line["report_id"] for line in _lines(folder, "deliveries")},
    }


def test_rpps_exports_only_that_professionals_reports_and_re_reads_complete(session, tmp_path):
    first, second = _two_reports(session)
    requester = first.requester.rpps
    out = tmp_path / "requester"
    manifest = write_export(session, out, rpps=requester)

    assert verify_export(out).counts == manifest["counts"]
    assert _ids(out) == {
        "reports": {first.report.id},
        "patients": {first.patient.id},
        "documents": {first.report.id},
        "deliveries": {first.report.id},
    }
    assert manifest["counts"]["document_files"] == 2
    assert manifest["professional"]["rpps"] == requester
    assert "requester, copy recipient" in manifest["professional"]["holds"]
    assert f"limited to one health professional, RPPS {requester}" in (out / "README.md").read_text()
    # the audit events are those about the exported report, its exam, deliveries and patient only
    about = {
        ("report", first.report.id),
        ("exam", first.exam.accession_number),
        ("patient", str(first.patient.id)),
        *(("delivery", str(line["id"])) for line in _lines(out, "deliveries")),
    }
    audit = _lines(out, "audit")
    assert audit and {(e["object_type"], e["object_id"]) for e in audit} <= about
    assert ("report", first.report.id) in {(e["object_type"], e["object_id"]) for e in audit}
    exported = json.dumps(_lines(out, "reports") + _lines(out, "patients"), ensure_ascii=False)
    assert second.report.id not in exported and str(second.exam.accession_number) not in exported

    copy = next(person for person, role in second.recipients if role == "copy")
    write_export(session, tmp_path / "copy", rpps=copy.rpps)
    assert _ids(tmp_path / "copy")["reports"] == {second.report.id}
    write_export(session, tmp_path / "radiologist", rpps=factories.RADIOLOGIST_RPPS)
    assert _ids(tmp_path / "radiologist")["reports"] == {first.report.id, second.report.id}


def test_an_author_who_never_validated_nor_received_is_found_by_authorship(session, tmp_path):
    first, _ = _two_reports(session)
    author = factories.correspondent(session, "10007777777", "AUTEUR", "Alix", None)
    report = session.get(Report, first.report.id)
    report.author_rpps = author.rpps
    session.add(report)
    session.commit()
    write_export(session, tmp_path / "author", rpps=author.rpps)
    assert _ids(tmp_path / "author")["reports"] == {first.report.id}


@pytest.mark.parametrize(
    ("rpps", "expected"),
    [
        ("123", "--rpps 123: must be the 11 digits of an RPPS number"),
        ("19999999999", "--rpps 19999999999: no report produced or received by this professional"),
    ],
)
def test_a_wrong_rpps_is_refused_and_writes_nothing(session, tmp_path, rpps, expected):
    _two_reports(session)
    with pytest.raises(ExportRefused) as refused:
        write_export(session, tmp_path / "out", rpps=rpps)
    assert str(refused.value).startswith(expected)
    assert not (tmp_path / "out").exists()


def test_cli_exports_one_professional_and_re_reads(session, db_url, acting_users, tmp_path):
    first, _ = _two_reports(session)
    rpps = first.requester.rpps
    env = isolated_env(tmp_path, RIS_DATABASE_URL=db_url)  # the test's folder: its users may act
    out = tmp_path / "export"
    by = ("--by", factories.RADIOLOGIST_RPPS)  # the demo's administrator (acting_users)
    written = run_ris(env, "export", "--out", str(out), "--rpps", rpps, *by)
    assert written.returncode == 0, written.stderr
    assert "1 reports" in written.stdout
    reread = run_ris(env, "import-export", str(out), "--json")
    assert reread.returncode == 0, reread.stderr
    assert json.loads(reread.stdout)["counts"]["reports"] == 1
    refused = run_ris(env, "export", "--out", str(tmp_path / "none"), "--rpps", "19999999999", *by)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: --rpps 19999999999: no report")
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
async def test_the_export_flow_takes_the_professional(session, prefect_server, tmp_path):
    from flows.export import portability_export

    _, second = _two_reports(session)
    copy = next(person for person, role in second.recipients if role == "copy")
    result = await portability_export(out=str(tmp_path / "nightly"), rpps=copy.rpps)
    assert result["rpps"] == copy.rpps and result["counts"]["reports"] == 1
    assert verify_export(tmp_path / "nightly").manifest["professional"]["rpps"] == copy.rpps
