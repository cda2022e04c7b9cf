"""Issue 25: a draft or provisional report takes a new text and new distribution flags before its
validation (`ris report edit`, `ris report flags`), each change audited with who and which fields (never the
text); a validated version stays frozen and the refusal says to use `ris report replace`; an edit and a
validation of the same report never interleave on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from ris.lifecycle import reports
from ris.operations.demo import sample_worklist
from ris.store import db
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Report, ReportStatus, ReportVersion
from ris.worklist import loader as worklist

RADIOLOGIST = "10001234567"  # the demo's first radiologist (ris.operations.demo.RADIOLOGISTS)
NEW_TEXT = "Indication : vertiges.\nRésultats : relecture après second avis, lésion de 4 mm."
runner = CliRunner()


def _drafts(url: str | None = None) -> tuple[str, str]:
    """The sample worklist's first draft and its provisional report (profile 8)."""
    data = sample_worklist(8)
    with session_scope(url) as session:
        assert worklist.load(session, data).ok
    ids = [item["id"] for item in data["reports"]]
    return ids[0], ids[7]


def _updates(session: Session, report_id: str) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == "report.update", AuditEntry.object_id == report_id)
    return list(session.exec(stmt.order_by(AuditEntry.id)))


def test_a_provisional_report_takes_a_new_text_and_flags_audited_without_the_text(db_url):
    _, provisional = _drafts()
    with session_scope() as session:
        changed = reports.edit(session, provisional, NEW_TEXT, "Lésion de 4 mm à surveiller.", RADIOLOGIST)
        flags = reports.set_flags(session, provisional, {"mask_ps": True, "dmp_blocked": False}, RADIOLOGIST)
    assert changed == ["body", "conclusion"] and flags == ["mask_ps"]  # dmp_blocked was already no
    with session_scope() as session:
        report = session.get(Report, provisional)
        assert (report.body, report.conclusion, report.mask_ps) == (
            NEW_TEXT,
            "Lésion de 4 mm à surveiller.",
            True,
        )
        assert report.status is ReportStatus.provisional and report.version == 0
        text, flag = _updates(session, provisional)
    assert (text.actor, text.detail["source"], text.detail["fields"]) == (
        RADIOLOGIST,
        "edit",
        ["body", "conclusion"],
    )
    assert (flag.detail["fields"], flag.detail["flags"]) == (["mask_ps"], {"mask_ps": True})
    assert "4 mm" not in str(text.detail) and "vertiges" not in str(text.detail)  # the text is health data


def test_the_same_text_again_records_nothing(db_url):
    draft, _ = _drafts()
    with session_scope() as session:
        body = session.get(Report, draft).body
        assert reports.edit(session, draft, body, None, RADIOLOGIST) == []
        assert reports.set_flags(session, draft, {"secret_connection": False}, RADIOLOGIST) == []
        assert _updates(session, draft) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s, r: reports.edit(s, r, "   ", None, RADIOLOGIST), "text: must not be empty"),
        (lambda s, r: reports.edit(s, r, NEW_TEXT, None, " "), "by: who changes the report is required"),
        (
            lambda s, r: reports.set_flags(s, r, {"urgent": True}, RADIOLOGIST),
            "urgent: not a distribution flag",
        ),
        (lambda s, r: reports.set_flags(s, r, {}, RADIOLOGIST), "flags: give at least one of dmp_blocked"),
    ],
)
def test_bad_requests_are_refused_in_one_line_and_change_nothing(db_url, change, expected):
    draft, _ = _drafts()
    with session_scope() as session:
        before = session.get(Report, draft).model_dump()
        with pytest.raises(reports.ReportRuleError) as refused:
            change(session, draft)
        assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)
    with session_scope() as session:
        assert session.get(Report, draft).model_dump() == before and _updates(session, draft) == []


def test_a_validated_version_stays_frozen_and_the_refusal_says_replace(db_url):
    draft, _ = _drafts()
    with session_scope() as session:
        reports.validate(session, draft, RADIOLOGIST)
    for change in (
        lambda s: reports.edit(s, draft, NEW_TEXT, None, RADIOLOGIST),
        lambda s: reports.set_flags(s, draft, {"mask_ps": True}, RADIOLOGIST),
    ):
        with session_scope() as session, pytest.raises(reports.ReportRuleError) as refused:
            change(session)
        assert str(refused.value) == (
            f"report {draft}: version 1 is validated and stays as it was validated; correct it with "
            f"`ris report replace {draft} --text-file FILE --by RPPS`"
        )
    with session_scope() as session:
        frozen = session.exec(select(ReportVersion).where(ReportVersion.report_id == draft)).one()
        assert frozen.body == session.get(Report, draft).body != NEW_TEXT
        assert session.get(Report, draft).mask_ps is False


def test_cli_edits_and_sets_flags_then_refuses_in_one_line(db_url, acting_users, tmp_path):
    draft, _ = _drafts()
    text = tmp_path / "text.txt"
    text.write_text(NEW_TEXT, encoding="utf-8")
    done = runner.invoke(app, ["report", "edit", draft, "--text-file", str(text), "--by", RADIOLOGIST])
    assert done.exit_code == 0, done.output
    assert done.stdout == f"report {draft}: text changed by {RADIOLOGIST}\n"
    again = runner.invoke(app, ["report", "edit", draft, "--text-file", str(text), "--by", RADIOLOGIST])
    assert again.stdout == f"report {draft}: text and conclusion unchanged; nothing recorded\n"
    flagged = runner.invoke(
        app,
        [
            "report",
            "flags",
            draft,
            "--dmp-blocked",
            "yes",
            "--announcement-required",
            "YES",
            "--by",
            RADIOLOGIST,
        ],
    )
    assert flagged.exit_code == 0, flagged.output
    assert (
        flagged.stdout
        == f"report {draft}: dmp_blocked yes, announcement_required yes (changed by {RADIOLOGIST})\n"
    )

    for args, expected in [
        (
            ["flags", draft, "--by", RADIOLOGIST],
            "error: give at least one of --dmp-blocked yes|no, --mask-ps",
        ),
        (["flags", draft, "--mask-ps", "maybe", "--by", RADIOLOGIST], "Invalid value for '--mask-ps'"),
        (
            ["edit", draft, "--text-file", str(tmp_path / "none.txt"), "--by", RADIOLOGIST],
            "error: --text-file",
        ),
        (
            ["edit", "NOPE", "--text-file", str(text), "--by", RADIOLOGIST],
            "error: report 'NOPE' does not exist",
        ),
    ]:
        refused = runner.invoke(app, ["report", *args])
        assert refused.exit_code in (1, 2) and expected in refused.stderr, refused.output
        assert "Traceback" not in refused.output
    with session_scope() as session:
        reports.validate(session, draft, RADIOLOGIST)
    frozen = runner.invoke(app, ["report", "flags", draft, "--mask-ps", "yes", "--by", RADIOLOGIST])
    assert frozen.exit_code == 1 and frozen.stderr.strip().splitlines() == [
        f"error: report {draft}: version 1 is validated and stays as it was validated; correct it with "
        f"`ris report replace {draft} --text-file FILE --by RPPS`"
    ]
    with session_scope() as session:
        assert [e.detail["source"] for e in _updates(session, draft)] == ["edit", "flags"]


def test_an_edit_waits_for_a_validation_in_progress_and_is_then_refused_on_postgresql(pg_url):
    """The validation holds the report row; the edit of the same report waits for it, then finds the
    report validated: the frozen text is the one the radiologist validated, never overwritten after."""
    draft, _ = _drafts(pg_url)
    validating = Session(db.get_engine(pg_url))
    frozen = reports.validate(validating, draft, RADIOLOGIST).body  # the row locked, not committed yet
    outcome: list[BaseException | list[str]] = []

    def edit() -> None:
        try:
            with session_scope(pg_url) as session:
                outcome.append(reports.edit(session, draft, NEW_TEXT, None, RADIOLOGIST))
        except reports.ReportRuleError as exc:
            outcome.append(exc)

    editor = threading.Thread(target=edit)
    editor.start()
    time.sleep(0.5)
    assert outcome == []  # waiting on the row lock
    validating.commit()
    validating.close()
    editor.join(10)
    [refused] = outcome
    assert isinstance(refused, reports.ReportRuleError) and "is validated" in str(refused)
    with session_scope(pg_url) as session:
        assert session.get(Report, draft).body == frozen != NEW_TEXT
