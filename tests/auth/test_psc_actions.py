"""The actions a professional takes through the engine record the RPPS proven by the Pro Santé Connect
login, not a self-declared one: `ris report validate` without `--by` after `ris login` (RIS.PSC.01)."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from ris.auth import login
from ris.operations.demo import sample_worklist
from ris.store.db import session_scope
from ris.store.models import AuditEntry, ReportVersion
from ris.worklist import loader as worklist

runner = CliRunner()


def test_validate_without_by_records_the_logged_in_rpps(provider, db_url, acting_users, tmp_path):
    data = sample_worklist(1)
    with session_scope() as session:
        assert worklist.load(session, data).ok
    report_id = data["reports"][0]["id"]
    provider.state.behaviour.rpps = data["reports"][0]["author_rpps"]
    login.save(tmp_path, {"id_token": provider.state.id_token()})  # as `ris login` leaves it

    # No engine answers: the validation is recorded and the CLI says the run could not start.
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = runner.invoke(app, ["report", "validate", report_id])
    assert f"report {report_id} validated as version 1" in result.stdout, result.stderr
    with session_scope() as session:
        (version,) = session.exec(select(ReportVersion)).all()
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "report.validate")).one()
    assert version.validator_rpps == entry.actor == data["reports"][0]["author_rpps"]


def test_validate_refuses_a_declared_rpps_other_than_the_logged_in_one(
    provider, db_url, acting_users, tmp_path
):
    data = sample_worklist(1)
    with session_scope() as session:
        assert worklist.load(session, data).ok
    login.save(tmp_path, {"id_token": provider.state.id_token()})
    result = runner.invoke(app, ["report", "validate", data["reports"][0]["id"], "--by", "10001234568"])
    assert result.exit_code == 1
    assert "--by 10001234568: differs from the logged-in professional's RPPS 10001234567" in result.stderr
    with session_scope() as session:
        assert session.exec(select(ReportVersion)).all() == []
