"""The worklist loader: good records kept, bad ones refused one by one with the field and the reason."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from cli.main import app
from ris.operations.demo import sample_worklist
from ris.store import db
from ris.store.models import (
    AuditEntry,
    Correspondent,
    Exam,
    IdentityStatus,
    Patient,
    Report,
    ReportRecipient,
    ReportStatus,
    WorklistItem,
)
from ris.worklist import loader as worklist
from tests.conftest import ROOT

LOADER = "10001234567"  # the demo's administrator (acting_users): worklist.load


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_the_sample_worklist_loads_entirely(session):
    result = worklist.load(session, sample_worklist(8))
    session.commit()
    assert result.refused == []
    assert result.loaded == {"correspondents": 7, "patients": 8, "exams": 8, "reports": 8}
    statuses = {p.status for p in session.exec(select(Patient))}
    assert statuses == {IdentityStatus.QUAL, IdentityStatus.RECUP, IdentityStatus.PROV, IdentityStatus.VALI}
    qualified = session.exec(select(Patient).where(Patient.status == IdentityStatus.QUAL)).first()
    assert qualified.ins_oid == "1.2.250.1.213.1.4.10" and len(qualified.ins_matricule) == 15


def test_a_large_sample_worklist_keeps_valid_and_distinct_ins():
    """The bench loads thousands of sample cases: past 900 the INS order number went to four digits (a
    16-character matricule the loader refused)."""
    matricules = [p["ins"]["matricule"] for p in sample_worklist(7992)["patients"] if "ins" in p]
    assert {len(m) for m in matricules} == {15} and len(set(matricules)) == len(matricules)


def test_the_published_schema_is_the_loader_format():
    published = json.loads((ROOT / "docs" / "worklist.schema.json").read_text(encoding="utf-8"))
    assert published == worklist.json_schema(), (
        "regenerate docs/worklist.schema.json with `ris worklist schema`"
    )
    jsonschema.validate(json.loads(json.dumps(sample_worklist(16))), published)


def test_requester_becomes_a_recipient_and_copies_follow(session):
    data = sample_worklist(2)
    worklist.load(session, data)
    report = session.get(Report, data["reports"][1]["id"])
    roles = sorted(
        r.role for r in session.exec(select(ReportRecipient).where(ReportRecipient.report_id == report.id))
    )
    assert roles == ["copy", "requester"]
    assert report.announcement_required is True


@pytest.mark.parametrize(
    ("section", "index", "change", "expected"),
    [
        ("patients", 0, {"birth_date": "1984-13-01"}, "patients[0] birth_date:"),
        ("patients", 0, {"sex": "X"}, "patients[0] sex:"),
        ("patients", 0, {"birth_name": ""}, "patients[0] birth_name:"),
        ("patients", 0, {"birth_name": "Martineau"}, "patients[0] birth_name: upper case"),
        (
            "patients",
            1,
            {"birth_date": "2199-03-28"},
            "patients[1] birth_date: birth date 2199-03-28 is in the future",
        ),
        (
            "patients",
            0,
            {"ins": {"matricule": "284046311310099", "oid": "1.2.250.1.213.1.4.10"}},
            "patients[0] ins.matricule: control key",
        ),
        (
            "patients",
            0,
            {"ins": {"matricule": "284046311310011", "oid": "1.2.250.1.213.1.4.2"}},
            "patients[0] ins.oid:",
        ),
        (
            "patients",
            3,
            {"ins": {"matricule": "284046311310011", "oid": "1.2.250.1.213.1.4.10"}},
            "patients[3] ins: an identity PROV holds no INS",
        ),
        ("patients", 0, {"ins": None}, "patients[0] ins: an identity QUAL comes with its INS"),
        ("patients", 0, {"nickname": "x"}, "patients[0] nickname: Extra inputs are not permitted"),
        ("exams", 0, {"modality": "scanner"}, "exams[0] modality:"),
        (
            "exams",
            0,
            {"started_at": "2026-11-20T09:30:00"},
            "exams[0] started_at: Input should have timezone info",
        ),
        ("exams", 0, {"requester_rpps": "10000000000"}, "exams[0] requester_rpps: no correspondent"),
        ("reports", 0, {"author_rpps": "123"}, "reports[0] author_rpps:"),
        ("reports", 0, {"id": "DUPONT Jean 1979"}, "reports[0] id:"),
        ("reports", 0, {"recipients": ["19999999999"]}, "reports[0] recipients: no correspondent"),
        ("correspondents", 0, {"mss_address": "emile@gmail.com"}, "correspondents[0] mss_address:"),
        (
            "correspondents",
            0,
            {"specialty_code": "G15_10/SM01"},
            "correspondents[0] specialty_code: not an imaging",
        ),
    ],
)
def test_a_bad_record_is_refused_alone(session, section, index, change, expected):
    data = sample_worklist(8)
    data[section][index].update(change)
    result = worklist.load(session, data)
    session.commit()
    assert len(result.refused) >= 1
    assert result.refused[0].startswith(expected), result.refused
    total = {"correspondents": 7, "patients": 8, "exams": 8, "reports": 8}
    assert result.loaded[section] == total[section] - 1
    assert _count(session, Correspondent) == result.loaded["correspondents"]
    assert _count(session, Patient) == result.loaded["patients"]


def test_a_refused_record_leaves_no_trace(session):
    data = sample_worklist(1)
    data["reports"][0]["recipients"] = ["19999999999"]
    audit_before = _count(session, AuditEntry)
    result = worklist.load(session, {"reports": data["reports"]})
    assert result.loaded["reports"] == 0
    assert _count(session, Report) == 0
    assert _count(session, AuditEntry) == audit_before


def test_a_reload_of_the_same_file_is_unchanged_and_stores_nothing(session):
    data = sample_worklist(8)
    data["patients"][0]["refusals"] = {"mss_patient": True, "mss_ps": False}
    assert worklist.load(session, data).ok
    session.commit()
    models = (Correspondent, Patient, Exam, Report, ReportRecipient, AuditEntry)
    before = [_count(session, m) for m in models]
    again = worklist.load(session, copy.deepcopy(data))
    assert again.ok, again.refused
    assert again.loaded == {"correspondents": 0, "patients": 0, "exams": 0, "reports": 0}
    assert again.unchanged == {"correspondents": 7, "patients": 8, "exams": 8, "reports": 8}
    assert [_count(session, m) for m in models] == before


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("correspondents", {"family": "AUTRE"}, "correspondents[0] rpps: correspondent "),
        ("patients", {"birth_name": "AUTRE"}, "patients[0] ipp: patient DEMO00001 "),
        ("patients", {"refusals": {"mss_patient": True}}, "patients[0] ipp: patient DEMO00001 "),
        ("exams", {"modality": "MR"}, "exams[0] order_id: an exam with "),
        # a report: updated while draft or provisional, refused once validated (test_draft_reload.py)
    ],
)
def test_a_reload_with_changed_values_refuses_them_and_changes_nothing(session, section, change, expected):
    data = sample_worklist(2)
    assert worklist.load(session, data).ok
    session.commit()
    before = [_count(session, m) for m in (Correspondent, Patient, Exam, Report, AuditEntry)]
    changed = copy.deepcopy(data)
    changed[section][0].update(change)
    again = worklist.load(session, changed)
    session.commit()
    [line] = again.refused
    field = "refusals.mss_patient" if "refusals" in change else next(iter(change))
    assert line.startswith(expected) and line.endswith(f"already exists with other values ({field})"), line
    assert sum(again.unchanged.values()) == sum(len(v) for v in data.values()) - 1
    assert [_count(session, m) for m in (Correspondent, Patient, Exam, Report, AuditEntry)] == before


def test_a_report_the_engine_moved_on_is_still_unchanged_on_reload(session):
    data = sample_worklist(1)
    assert worklist.load(session, data).ok
    report = session.get(Report, data["reports"][0]["id"])
    report.status = ReportStatus.validated
    session.add(report)
    session.commit()
    assert worklist.load(session, copy.deepcopy(data)).unchanged["reports"] == 1


def test_unknown_sections_are_refused(session):
    result = worklist.load(session, {"patients": [], "studies": []})
    assert result.refused == ["studies: unknown section (expected correspondents, patients, exams, reports)"]


def test_cli_loads_and_reports_refusals(db_url, acting_users, tmp_path):
    data = sample_worklist(2)
    data["exams"][1]["modality"] = "??"
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["worklist", "load", str(path), "--by", LOADER])
    assert result.exit_code == 2
    assert "loaded: 7 correspondents, 2 patients, 1 exams, 1 reports" in result.stdout
    assert "refused: exams[1] modality:" in result.stderr
    # Each refused record waits on the identity-vigilance worklist, once however often the file is loaded.
    assert CliRunner().invoke(app, ["worklist", "load", str(path), "--by", LOADER]).exit_code == 2
    with Session(db.get_engine(db_url)) as s:
        items = s.exec(select(WorklistItem).where(WorklistItem.kind == "worklist-record-refused")).all()
    assert "exams[1]" in [i.object_id for i in items] and len(items) == len(set(i.object_id for i in items))
    assert {i.source for i in items} == {"worklist file worklist.json"}


def test_cli_refuses_a_file_that_is_not_json(db_url, acting_users, tmp_path):
    path = tmp_path / "worklist.json"
    path.write_text("not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["worklist", "load", str(path), "--by", LOADER])
    assert result.exit_code == 1
    assert "worklist.json: not a readable JSON worklist" in result.stderr
