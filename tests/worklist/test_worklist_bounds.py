"""A worklist file is read with bounded memory and refused in one line when it cannot be loaded whole; a
text that ends in a header or a one-line field is refused at intake when it holds a control character,
with the field named; a report's text has the site's maximum; refusals beyond the site's list are
counted, not kept."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from cli.main import app
from ris.operations.demo import sample_worklist
from ris.site.settings import IntakeLimits
from ris.store import db
from ris.store.models import Correspondent, Exam, Patient, Report
from ris.worklist import loader as worklist
from ris.worklist import reader as worklist_reader

LOADER = "10001234567"  # the demo's administrator (acting_users)
pytestmark = pytest.mark.usefixtures("acting_users")


def _load(path: Path):
    return CliRunner().invoke(app, ["worklist", "load", str(path), "--by", LOADER])


def _stored(db_url: str) -> list[int]:
    with Session(db.get_engine(db_url)) as s:
        return [s.exec(select(func.count()).select_from(m)).one() for m in (Patient, Exam, Report)]


def _with_reports(reports: str) -> str:
    """The sample worklist's text, its reports section replaced by `reports` (raw JSON text)."""
    data = sample_worklist(1)
    del data["reports"]
    return json.dumps(data)[:-1] + f', "reports": {reports}}}'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (_with_reports("[" + "[" * 3000 + "]" * 3000 + "]"), "reports[0]: nested too deep"),
        ("[" * 3000 + "]" * 3000, "expected a JSON object with lists of records (line 1)"),
        (_with_reports('[{"id": "1"}, {"id": ]'), "reports[1]: not valid JSON: Expecting value (line 1)"),
        (_with_reports("[]") + " {}", "more data after the worklist's object"),
    ],
    ids=["nested-record", "nested-file", "broken-record", "trailing-data"],
)
def test_a_file_that_cannot_be_read_whole_is_refused_in_one_line(db_url, tmp_path, text, line) -> None:
    path = tmp_path / "worklist.json"
    path.write_text(text, encoding="utf-8")
    result = _load(path)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: worklist.json: not a readable JSON worklist: ")
    assert line in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert _stored(db_url) == [0, 0, 0]  # nothing stored: the file is refused before its first record


def test_a_record_larger_than_the_site_allows_stops_the_load_before_anything_is_stored(
    session, tmp_path
) -> None:
    data = sample_worklist(2)
    data["reports"][1]["body"] = "x" * 300_000
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        worklist.RecordRefused, match=r"reports\[1\]: a record larger than 256 kB .*max_record_kb"
    ):
        worklist.load_file(session, path, limits=IntakeLimits(max_record_kb=256))
    assert session.exec(select(func.count()).select_from(Correspondent)).one() == 0


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("exams", "exam_label", "Scanner\r\nBcc: someone@outside.example"),
        ("patients", "birth_name", "DUPONT\x00"),
        ("correspondents", "family", "MARTIN\u2028X"),
        ("reports", "title", "Compte rendu\n"),
        ("reports", "body", "Résultat\x07"),
    ],
)
def test_a_control_character_is_refused_with_its_field(session, section, field, value) -> None:
    data = sample_worklist(1)
    data[section][0][field] = value
    if field == "title":  # trailing white space is stripped: put the line break inside
        data[section][0][field] = "Compte\nrendu"
    result = worklist.load(session, data)
    [line] = [r for r in result.refused if r.startswith(f"{section}[0] {field}:")]
    assert "holds a control character (U+" in line


def test_free_text_keeps_its_line_breaks_and_tabs_within_the_site_maximum(session) -> None:
    data = sample_worklist(2)
    data["reports"][0]["body"] = "Indication :\r\n\tdouleur.\nConclusion :\tnormal."
    data["reports"][1]["body"] = "x" * 101
    result = worklist.load(session, data, limits=IntakeLimits(max_report_chars=100))
    assert result.refused == [
        "reports[1] body: longer than 100 characters (site setting intake.max_report_chars)"
    ]
    assert session.get(Report, data["reports"][0]["id"]).body.startswith("Indication :\r\n\tdouleur.")


def test_refusals_beyond_the_site_s_list_are_counted_not_kept(db_url, tmp_path) -> None:
    path = tmp_path / "empty-records.json"
    path.write_text(json.dumps({"patients": [{}] * 5000}), encoding="utf-8")
    with db.session_scope(db_url) as session:
        result = worklist.load_file(session, path, limits=IntakeLimits(max_refusals_listed=3))
    assert result.refused_count == 5000 and len(result.refused) == 3 and not result.ok
    cli = _load(path)
    assert cli.exit_code == 2
    assert "refused: 4000 more records, not listed (site setting intake.max_refusals_listed)" in cli.stderr


def test_reading_holds_one_record_at_a_time(tmp_path) -> None:
    """Forty records of 1 MB each (a 40 MB file): json.loads would hold all of it; the reader holds about
    one record and a chunk."""
    path = tmp_path / "large.json"
    record = json.dumps({"ipp": "1", "birth_name": "x" * 1_000_000})
    path.write_text('{"patients": [' + ",".join([record] * 40) + "]}", encoding="utf-8")
    tracemalloc.start()
    try:
        in_file = worklist_reader.outline(path, worklist.SECTIONS, 2 * 1024 * 1024)
        count = sum(1 for _ in worklist_reader.records(path, worklist.SECTIONS, in_file, 2 * 1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (in_file, count) == (["patients"], 40)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 40 MB file"
