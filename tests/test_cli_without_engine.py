"""Without the engine's Prefect server, commands that need the site settings refuse instead of building
documents from default facility data that would then be stored for good."""

from __future__ import annotations

import subprocess

import pytest
from sqlmodel import select

from ris.store import db
from ris.store.models import Document
from tests import factories
from tests.cli_process import isolated_env, run_ris

pytestmark = pytest.mark.slow


def _ris(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_ris(isolated_env(tmp_path, RIS_DATABASE_URL=url), *args)


def test_document_build_and_hl7_render_need_the_engine(db_url, tmp_path):
    with db.session_scope(db_url) as session:
        report_id = factories.validated_report(session).report.id
    built = _ris(tmp_path, db_url, "document", "build", report_id, "--out", str(tmp_path / "out"))
    assert built.returncode == 1
    assert "needs the site settings saved on the engine's Prefect server: start `ris up`" in built.stderr
    rendered = _ris(tmp_path, db_url, "hl7", "render", report_id)
    assert rendered.returncode == 1 and "rendering a message needs the site settings" in rendered.stderr
    with db.session_scope(db_url) as session:
        assert session.exec(select(Document)).all() == []


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_a_database_never_migrated_gets_one_line_and_the_command_that_fixes_it(tmp_path):
    shown = run_ris(isolated_env(tmp_path), "report", "show", "R1")
    line = _one_line_error(shown)
    assert "is not migrated" in line and "run `ris db upgrade`" in line
    worker = run_ris(isolated_env(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api"), "worker")
    assert "run `ris db upgrade`" in _one_line_error(worker)


def test_a_worker_without_its_prefect_server_says_so_in_one_line(tmp_path):
    env = isolated_env(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api")
    assert run_ris(env, "db", "upgrade").returncode == 0
    line = _one_line_error(run_ris(env, "worker", "--pool", "ris"))
    assert "Prefect server (http://127.0.0.1:9/api) does not answer" in line and "`ris up`" in line
    unset = _one_line_error(run_ris(isolated_env(tmp_path), "worker"))
    assert "needs the site settings saved on the engine's Prefect server" in unset
