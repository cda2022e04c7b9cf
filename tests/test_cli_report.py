"""`ris report`: validation is kept even when the lifecycle cannot start, and `show` tells the state."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from ris.operations.demo import sample_worklist
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Report, ReportStatus, ReportVersion
from ris.worklist import loader as worklist
from tests.conftest import add_user

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("acting_users")  # the demo's radiologists act, as in a demo folder


def _load(n: int = 2) -> dict:
    data = sample_worklist(n)
    with session_scope() as session:
        assert worklist.load(session, data).ok
    return data


def test_validate_refuses_bad_input_and_changes_nothing(db_url, monkeypatch):
    """Who may act is checked first (a user of the engine holding report.validate); then the report's
    own rules (a radiologist of the RIS, by RPPS)."""
    data = _load()
    report_id = data["reports"][0]["id"]
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")
    add_user(db_url, "u.martin", "radiologist")
    add_user(db_url, "19999999999", "radiologist")
    for by, expected in [
        ("10009999999", "10009999999: not a user of this engine"),
        ("u.martin", "validator RPPS: must be the 11 digits"),
        ("19999999999", "unknown radiologist"),
    ]:
        result = runner.invoke(app, ["report", "validate", report_id, "--by", by])
        assert result.exit_code == 1 and expected in result.stderr
    result = runner.invoke(app, ["report", "validate", "NOPE", "--by", "10001234567"])
    assert result.exit_code == 1 and "report 'NOPE' does not exist" in result.stderr
    with session_scope() as session:
        assert session.get(Report, report_id).status is ReportStatus.draft
        assert session.exec(select(ReportVersion)).all() == []


async def _without_lifecycle_deployment() -> None:
    """Other tests of the session may have applied the deployments to the shared test server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from deployments import LIFECYCLE_DEPLOYMENT

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(LIFECYCLE_DEPLOYMENT)
        except ObjectNotFound:
            return
        await client.delete_deployment(deployment.id)


def test_validation_is_kept_when_the_engine_is_not_up(db_url, prefect_server):
    """No lifecycle deployment on the server: the run cannot start, the validation stays, and the
    message says how to start it later."""
    asyncio.run(_without_lifecycle_deployment())
    data = _load()
    item = data["reports"][0]
    result = runner.invoke(app, ["report", "validate", item["id"], "--by", item["author_rpps"]])
    assert result.exit_code == 3, result.output
    assert f"report {item['id']} validated as version 1" in result.stdout
    assert f"ris report dispatch {item['id']}" in result.stderr
    with session_scope() as session:
        report = session.get(Report, item["id"])
        assert (report.status, report.version) == (ReportStatus.validated, 1)
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "report.validate")).one()
    again = runner.invoke(app, ["report", "validate", item["id"], "--by", item["author_rpps"]])
    assert again.exit_code == 1 and "already validated" in again.stderr


def test_show_json_has_the_summary_shape(db_url):
    data = _load()
    report_id = data["reports"][0]["id"]
    result = runner.invoke(app, ["report", "show", report_id, "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert {"id", "version", "status", "channels", "reasons"} <= shown.keys()
    assert set(shown["channels"]) == {"dmp", "mss-ps", "mss-patient", "hl7"}
    assert shown["channels"]["dmp"] == "blocked" and "nothing leaves the RIS" in shown["reasons"]["dmp"]
    text = runner.invoke(app, ["report", "show", report_id])
    assert text.exit_code == 0 and f"report {report_id}  version 0  draft" in text.stdout


def test_a_draft_becomes_provisional_and_never_leaves_the_ris(db_url):
    """RIS.CRR.04."""
    data = _load()
    item = data["reports"][0]
    result = runner.invoke(app, ["report", "provisional", item["id"], "--by", item["author_rpps"]])
    assert result.exit_code == 0 and "provisional since" in result.stdout
    again = runner.invoke(app, ["report", "provisional", item["id"], "--by", item["author_rpps"]])
    assert again.exit_code == 0  # already provisional: nothing changes
    shown = json.loads(runner.invoke(app, ["report", "show", item["id"], "--json"]).stdout)
    assert shown["status"] == "provisional"
    assert set(shown["channels"].values()) == {"blocked"}
    with session_scope() as session:
        actions = session.exec(select(AuditEntry.action).where(AuditEntry.object_id == item["id"])).all()
    assert actions.count("report.provisional") == 1
    unknown = runner.invoke(app, ["report", "provisional", item["id"], "--by", "19999999999"])
    assert unknown.exit_code == 1 and "this site refuses --by" in unknown.stderr
