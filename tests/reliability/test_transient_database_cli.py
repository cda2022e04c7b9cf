"""Commands that write survive a transient database fault: the unit of work runs again once the other
writer lets go; a fault that outlasts the attempts ends with one line saying what happened and what to
do, nothing changed and no traceback. The fault is real: another writer holds SQLite's write lock past
the busy timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app, explain
from ris.operations.demo import sample_worklist
from ris.store.db import session_scope
from ris.store.models import Patient, Report, ReportStatus
from ris.store.transient import TransientDatabaseError
from tests.cli_process import isolated_env, run_ris
from tests.sqlite_lock import WriteLock

runner = CliRunner()
LOADER = "10001234567"  # the demo's administrator (acting_users): worklist.load


@pytest.fixture
def quick_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_DB_RETRY_DELAY_SECONDS", "0.02")
    monkeypatch.setenv("RIS_DB_RETRY_MAX_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("RIS_SQLITE_BUSY_TIMEOUT_SECONDS", "0.1")


@pytest.fixture
def worklist_file(tmp_path: Path) -> Path:
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps(sample_worklist(2)), encoding="utf-8")
    return path


@pytest.fixture
def locked(db_url: str) -> Iterator[WriteLock]:
    lock = WriteLock(db_url)
    yield lock
    lock.release()


def _loaded(worklist_file: Path) -> dict:
    result = runner.invoke(app, ["worklist", "load", str(worklist_file), "--by", LOADER])
    assert result.exit_code == 0, result.output
    return json.loads(worklist_file.read_text(encoding="utf-8"))


def test_a_command_that_writes_waits_for_the_other_writer(
    quick_faults, db_url: str, acting_users, worklist_file: Path, monkeypatch: pytest.MonkeyPatch
):
    item = _loaded(worklist_file)["reports"][0]
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "40")
    lock = WriteLock(db_url)
    lock.release_in(0.8)
    result = runner.invoke(app, ["report", "provisional", item["id"], "--by", item["author_rpps"]])
    assert result.exit_code == 0, result.output
    assert "provisional since" in result.stdout
    with session_scope() as session:
        assert session.get(Report, item["id"]).status is ReportStatus.provisional


def test_a_fault_that_outlasts_the_attempts_changes_nothing_and_says_so_in_one_line(
    quick_faults, db_url: str, acting_users, worklist_file: Path, monkeypatch: pytest.MonkeyPatch
):
    item = _loaded(worklist_file)["reports"][0]
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "2")
    lock = WriteLock(db_url)
    try:
        result = runner.invoke(app, ["report", "provisional", item["id"], "--by", item["author_rpps"]])
    finally:
        lock.release()
    assert isinstance(result.exception, TransientDatabaseError)
    line = explain(result.exception)
    assert line is not None and "\n" not in line
    assert "busy or unreachable over 2 attempts (OperationalError, SQLITE_BUSY" in line
    assert "nothing was changed: run it again" in line
    with session_scope() as session:
        assert session.get(Report, item["id"]).status is ReportStatus.draft


def test_a_worklist_load_stopped_by_a_locked_database_loads_the_file_again(
    quick_faults, db_url: str, acting_users, worklist_file: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "40")
    lock = WriteLock(db_url)
    lock.release_in(0.8)
    result = runner.invoke(app, ["worklist", "load", str(worklist_file), "--by", LOADER])
    assert result.exit_code == 0, result.output
    assert "database is locked" in result.stderr and "loading the file again" in result.stderr
    assert "2 patients" in result.stdout
    with session_scope() as session:
        assert len(session.exec(select(Patient)).all()) == 2


@pytest.mark.slow
def test_the_command_line_shows_no_traceback(
    db_url: str, acting_users, worklist_file: Path, locked: WriteLock, tmp_path
):
    env = isolated_env(
        tmp_path,
        RIS_DATABASE_URL=db_url,
        RIS_DB_RETRY_ATTEMPTS="2",
        RIS_SQLITE_BUSY_TIMEOUT_SECONDS="0.1",
    )
    done = run_ris(env, "report", "provisional", "CR000001", "--by", "10001234567")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    *waits, line = done.stderr.strip().splitlines()
    assert line.startswith("error: the engine database stayed busy or unreachable over 2 attempts")
    [wait] = waits  # the first attempt's fault, logged as the command waits (class and code only)
    expected = "cli.report.provisional: transient database fault (OperationalError, SQLITE_BUSY) on attempt 1"
    assert expected in wait
