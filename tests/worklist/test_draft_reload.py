"""Issue 25: a worklist reload updates a report that is still a draft or provisional and names the fields
that changed (audited with the loader, field names only); a validated report keeps refusing other values;
a reload never moves a report back to draft nor to another exam."""

from __future__ import annotations

import copy
import json

from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from ris.lifecycle import refusals, reports
from ris.operations.demo import SPECIALISTS, sample_worklist
from ris.store import refusals as stored_refusals
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Correspondent, Report, ReportRecipient, ReportStatus
from ris.worklist import loader as worklist

NEW_BODY = "Indication : vertiges.\nRésultats : aspect modifié après relecture."


def _copies(session: Session, report_id: str) -> set[str]:
    rows = session.exec(
        select(Correspondent.rpps)
        .join(ReportRecipient, ReportRecipient.correspondent_id == Correspondent.id)
        .where(ReportRecipient.report_id == report_id, ReportRecipient.role == "copy")
    )
    return set(rows)


def _updates(session: Session, report_id: str) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == "report.update", AuditEntry.object_id == report_id)
    return list(session.exec(stmt))


def test_a_reload_updates_a_draft_and_a_provisional_report_and_names_the_fields(session):
    data = sample_worklist(8)
    assert worklist.load(session, data).ok
    session.commit()
    changed = copy.deepcopy(data)
    draft, provisional = changed["reports"][0], changed["reports"][7]
    draft.update(body=NEW_BODY, mask_ps=True, refuse_mss_ps=True, recipients=[SPECIALISTS[1]["rpps"]])
    provisional.update(conclusion="Conclusion revue.", confidentiality="R")

    again = worklist.load(session, changed, actor="worklist")
    session.commit()
    assert again.ok, again.refused
    assert again.updated == [
        f"reports[0] {draft['id']}: body, refuse_mss_ps, mask_ps, recipients",
        f"reports[7] {provisional['id']}: conclusion, confidentiality",
    ]
    assert again.loaded["reports"] == 0 and again.unchanged["reports"] == 6
    row = session.get(Report, draft["id"])
    assert (row.body, row.mask_ps, row.refuse_mss_ps, row.refusal_override_by) == (
        NEW_BODY,
        True,
        True,
        "worklist",
    )
    assert _copies(session, draft["id"]) == {SPECIALISTS[1]["rpps"]}
    assert stored_refusals.for_report(session, row, refusals.patient_of(session, row)).mss_ps is True
    [entry] = _updates(session, draft["id"])
    assert entry.actor == "worklist" and entry.detail["source"] == "worklist"
    assert entry.detail["fields"] == ["body", "mask_ps", "recipients"] and entry.detail["flags"] == {
        "mask_ps": True
    }
    assert "relecture" not in json.dumps(entry.detail)  # field names, never the text
    assert session.get(Report, provisional["id"]).confidentiality == "R"

    third = worklist.load(session, copy.deepcopy(changed))  # the same file again: nothing more
    assert third.updated == [] and third.unchanged["reports"] == 8


def test_a_reload_moves_a_draft_to_provisional_but_never_back(session):
    data = sample_worklist(1)
    assert worklist.load(session, data).ok
    report_id = data["reports"][0]["id"]
    promoted = copy.deepcopy(data)
    promoted["reports"][0]["status"] = "provisional"
    assert worklist.load(session, promoted).updated == [f"reports[0] {report_id}: status, provisional_since"]
    row = session.get(Report, report_id)
    assert row.status is ReportStatus.provisional and row.provisional_since is not None
    # the original file (status draft) again: the report stays provisional, nothing is changed
    again = worklist.load(session, copy.deepcopy(data))
    assert again.updated == [] and again.refused == [] and again.unchanged["reports"] == 1
    assert session.get(Report, report_id).status is ReportStatus.provisional


def test_a_validated_report_keeps_refusing_changed_values(session):
    data = sample_worklist(1)
    assert worklist.load(session, data).ok
    report_id = data["reports"][0]["id"]
    reports.validate(session, report_id, data["reports"][0]["author_rpps"])
    session.commit()
    before = session.get(Report, report_id).model_dump()
    changed = copy.deepcopy(data)
    changed["reports"][0].update(body=NEW_BODY, mask_ps=True)
    again = worklist.load(session, changed)
    session.commit()
    assert again.refused == [
        f"reports[0] id: report {report_id} already exists with other values (body, mask_ps)"
    ]
    assert again.updated == [] and session.get(Report, report_id).model_dump() == before
    assert _updates(session, report_id) == []


def test_a_draft_never_moves_to_another_exam_nor_to_an_unknown_author(session):
    data = sample_worklist(2)
    assert worklist.load(session, data).ok
    session.commit()
    moved = copy.deepcopy(data)
    moved["reports"][0]["accession_number"] = data["exams"][1]["accession_number"]
    moved["reports"][1]["author_rpps"] = "19999999999"
    again = worklist.load(session, moved)
    first = data["reports"][0]["id"]
    assert again.refused == [
        f"reports[0] id: report {first} already exists with other values (accession_number)",
        "reports[1] author_rpps: no radiologist 19999999999",
    ]
    assert again.updated == [] and _updates(session, data["reports"][1]["id"]) == []


def test_cli_says_which_fields_changed(db_url, acting_users, tmp_path):
    data = sample_worklist(2)
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["worklist", "load", str(path), "--by", "10001234567"]).exit_code == 0
    data["reports"][1]["title"] = "IRM cérébrale de contrôle"
    data["reports"][1]["dmp_blocked"] = True
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["worklist", "load", str(path), "--by", "10001234567"])
    assert result.exit_code == 0, result.output
    assert f"updated: reports[1] {data['reports'][1]['id']}: title, dmp_blocked\n" in result.stdout
    with session_scope() as session:
        assert session.get(Report, data["reports"][1]["id"]).title == "IRM cérébrale de contrôle"


def test_a_file_naming_a_draft_twice_keeps_the_first_and_a_reload_changes_nothing(session):
    data = sample_worklist(1)
    twice = copy.deepcopy(data["reports"][0])
    twice["body"] = NEW_BODY
    data["reports"].append(twice)
    first = worklist.load(session, data)
    report_id = data["reports"][0]["id"]
    expected = [f"reports[1] id: report {report_id} already exists with other values (body)"]
    assert first.refused == expected and first.updated == []
    again = worklist.load(session, copy.deepcopy(data))
    assert again.refused == expected and again.updated == [] and again.unchanged["reports"] == 1
    assert session.get(Report, report_id).body == data["reports"][0]["body"]
