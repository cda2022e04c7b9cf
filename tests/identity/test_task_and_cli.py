"""The lifecycle's identity check task (rule 28) and the `ris identity` commands."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from prefect.states import Failed
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.identity import app
from ris.store import db
from ris.store.models import AuditEntry, InsiExchange
from sandbox.insi import InsiSandbox
from tasks.identity import check_identity
from tests import factories
from tests.identity.test_pam import message

runner = CliRunner()
RADIOLOGIST, OTHER_RADIOLOGIST = "10001234567", "10001234568"  # the demo's (acting_users)


async def test_check_identity_allows_a_qualified_ins(session) -> None:
    bundle = factories.validated_report(session)
    out = await check_identity.fn(bundle.report.id, 1)
    assert out == {
        "ins_transmissible": True,
        "reason": None,
        "channels": {"cda": True, "dmp": True, "mss-patient": True},
    }
    session.expire_all()
    [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "identity.check")).all()
    assert entry.object_id == bundle.report.id and entry.detail["ins_transmissible"] is True


async def test_check_identity_blocks_a_recovered_ins_without_health_data(session) -> None:
    bundle = factories.validated_report(
        session,
        qualified=False,
    )
    out = await check_identity.fn(bundle.report.id, 1)
    assert out["ins_transmissible"] is False and "not QUAL" in out["reason"]
    text = json.dumps(out)
    assert bundle.patient.birth_name not in text and "1979" not in text


def test_retry_only_on_transient_database_errors() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5  # SQLITE_BUSY, as sqlite3 sets it
    locked = sa.exc.OperationalError("UPDATE", {}, busy)
    retry = check_identity.retry_condition_fn
    assert retry(check_identity, None, Failed(data=locked)) is True
    assert retry(check_identity, None, Failed(data=ValueError("rule"))) is False


def test_verify_key_exit_codes() -> None:
    ok = runner.invoke(app, ["verify-key", "297022A02077878"])
    assert ok.exit_code == 0 and "verifies" in ok.output
    bad = runner.invoke(app, ["verify-key", "297022A02077879"])
    assert bad.exit_code == 1 and "expected 78" in bad.output


def test_import_show_search(db_url, acting_users, tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(message().replace("\r", "\n"))
    imported = runner.invoke(app, ["import-pam", str(feed), "--own-domain", "GAM", "--by", RADIOLOGIST])
    assert imported.exit_code == 0 and "message 1: AA" in imported.output
    shown = runner.invoke(app, ["show", "000003", "--by", RADIOLOGIST, "--json"])
    view = json.loads(shown.output)
    assert (
        view["status"] == "QUAL"
        and view["ins_matricule"] == "279035121518989"
        and view["ins_nature"] == "NIR"
    )
    found = runner.invoke(
        app, ["search", "--by", RADIOLOGIST, "--birth-date", "1979-03-28", "--name", "pat-t"]
    )
    assert "1 identity found" in found.output
    by_ins = runner.invoke(app, ["search", "--by", RADIOLOGIST, "--ins", "279035121518988"])
    assert by_ins.exit_code == 1 and "does not match" in by_ins.output
    with Session(db.get_engine(db_url)) as s:
        actions = [a.action for a in s.exec(select(AuditEntry).where(AuditEntry.actor == RADIOLOGIST)).all()]
    assert actions == ["ins.read", "identity.search"]


def test_insi_lookup_against_the_sandbox(wsdl: Path, db_url, acting_users) -> None:
    with InsiSandbox(port=0, wsdl=wsdl) as sandbox:
        args = ["insi-lookup", "--by", OTHER_RADIOLOGIST, "--url", sandbox.url, "--wsdl", str(wsdl)]
        found = runner.invoke(
            app,
            [*args, "--name", "ADRTROIS", "--given", "DOMINIQUE", "--sex", "F", "--birth-date", "1997-02-26"],
        )
        refused = runner.invoke(
            app, [*args, "--name", "LUNAIRE", "--given", "LUNA", "--sex", "F", "--birth-date", "1950-01-01"]
        )
    assert found.exit_code == 0 and "INSi 00 OK" in found.output and "297022A02077878" in found.output
    assert refused.exit_code == 1 and "INS rule 11" in refused.output
    with Session(db.get_engine(db_url)) as s:
        assert [e.by for e in s.exec(select(InsiExchange)).all()] == [OTHER_RADIOLOGIST] * 2
