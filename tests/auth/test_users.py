"""Users and roles (RIS.INS.03, .05, .06, .17): the first administrator by an explicit bootstrap, users
added and roles granted or revoked by an administrator with who and why; every acting command checks the
acting user's permission and refuses in one line, changing nothing; a Pro Santé Connect login maps to the
user of its RPPS; `--by` needs a site that allows it, or the demo folder's allowance."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from ris.auth import demo_users, login, users
from ris.auth.actor import ActorRefused, authorize
from ris.auth.roles import ROLES, permissions_of
from ris.operations.demo import sample_worklist
from ris.site.engine import EngineConfig
from ris.store import db
from ris.store.models import AuditEntry, Report, ReportStatus, ReportVersion, RisUser, UserRole
from ris.worklist import loader as worklist

runner = CliRunner()
ADMIN = "10001234567"


def _audit(db_url: str, action: str) -> list[AuditEntry]:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _users(db_url: str) -> list[tuple[str, str]]:
    with Session(db.get_engine(db_url)) as s:
        return sorted((r.user_id, r.role) for r in s.exec(select(UserRole)))


def test_the_first_administrator_comes_from_an_explicit_bootstrap_and_then_administers(db_url, monkeypatch):
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")  # a site without Pro Santé Connect
    no_reason = runner.invoke(app, ["user", "bootstrap", ADMIN])
    assert no_reason.exit_code == 1 and "--reason: why the change is made is required" in no_reason.stderr
    done = runner.invoke(app, ["user", "bootstrap", ADMIN, "--name", "Émile Lefèvre", "--reason", "RT"])
    assert done.exit_code == 0 and f"user {ADMIN} is the first administrator" in done.stdout
    again = runner.invoke(app, ["user", "bootstrap", "u.other", "--reason", "me too"])
    assert again.exit_code == 1 and f"{ADMIN} is already an administrator" in again.stderr

    add = ["user", "add", "u.martin", "--role", "secretary", "--reason", "hired", "--by", ADMIN]
    assert runner.invoke(app, add).exit_code == 0
    bad = runner.invoke(app, ["user", "add", "U M", "--reason", "x", "--by", ADMIN])
    assert bad.exit_code == 1 and "user id 'U M': must be an RPPS (11 digits)" in bad.stderr
    role = runner.invoke(app, ["user", "grant", "u.martin", "chef", "--reason", "x", "--by", ADMIN])
    assert role.exit_code == 1 and "role 'chef': one of radiologist, secretary" in role.stderr
    grant = ["user", "grant", "u.martin", "identity-referent", "--reason", "vigilance", "--by", ADMIN]
    assert runner.invoke(app, grant).stdout.strip() == "user u.martin: identity-referent granted"
    # A secretary is no administrator: refused in one line, nothing changed.
    refused = runner.invoke(app, ["user", "add", "u.durand", "--reason", "x", "--by", "u.martin"])
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "u.martin lacks the permission users.manage" in refused.stderr
    last = runner.invoke(app, ["user", "revoke", ADMIN, "administrator", "--reason", "x", "--by", ADMIN])
    assert last.exit_code == 1 and "is the last administrator" in last.stderr
    revoke = ["user", "revoke", "u.martin", "secretary", "--reason", "left the desk", "--by", ADMIN]
    assert runner.invoke(app, revoke).exit_code == 0

    assert _users(db_url) == [(ADMIN, "administrator"), ("u.martin", "identity-referent")]
    shown = json.loads(runner.invoke(app, ["user", "show", "u.martin", "--json"]).stdout)
    assert shown["roles"] == ["identity-referent"] and "identity.worklist" in shown["permissions"]
    listed = json.loads(runner.invoke(app, ["user", "list", "--json"]).stdout)
    assert [u["id"] for u in listed] == [ADMIN, "u.martin"]
    # Every change audited with who and why.
    trail = [
        (e.action, e.actor, e.object_id, e.detail.get("role"), e.detail["reason"])
        for e in _all_user_audit(db_url)
    ]
    assert trail == [
        ("user.bootstrap", ADMIN, ADMIN, None, "RT"),
        ("user.grant", ADMIN, ADMIN, "administrator", "RT"),
        ("user.add", ADMIN, "u.martin", None, "hired"),
        ("user.grant", ADMIN, "u.martin", "secretary", "hired"),
        ("user.grant", ADMIN, "u.martin", "identity-referent", "vigilance"),
        ("user.revoke", ADMIN, "u.martin", "secretary", "left the desk"),
    ]


def _all_user_audit(db_url: str) -> list[AuditEntry]:
    with Session(db.get_engine(db_url)) as s:
        return list(
            s.exec(select(AuditEntry).where(AuditEntry.object_type == "user").order_by(AuditEntry.id))
        )


def _draft_report(db_url: str) -> str:
    data = sample_worklist(1)
    with db.session_scope(db_url) as s:
        assert worklist.load(s, data).ok
    return data["reports"][0]["id"]


def _unchanged(db_url: str, report_id: str) -> None:
    with Session(db.get_engine(db_url)) as s:
        assert s.get(Report, report_id).status is ReportStatus.draft
        assert s.exec(select(ReportVersion)).all() == []
    assert _audit(db_url, "report.validate") == []


def test_an_unknown_by_and_a_user_without_the_permission_are_refused_in_one_line(
    db_url, acting_users, monkeypatch
):
    report_id = _draft_report(db_url)
    # Declared actors refused (the default): only the demo allowance's users may use --by here.
    unknown = runner.invoke(app, ["report", "validate", report_id, "--by", "10009999999"])
    assert unknown.exit_code == 1 and unknown.stderr == (
        "error: nobody is logged in: log in with `ris login` (this site refuses --by)\n"
    )
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")
    unknown = runner.invoke(app, ["report", "validate", report_id, "--by", "10009999999"])
    assert unknown.exit_code == 1 and unknown.stderr == (
        "error: 10009999999: not a user of this engine; an administrator adds users (`ris user add`)\n"
    )
    with db.session_scope(db_url) as s:
        users.add(s, ADMIN, "u.martin", roles=["secretary"], reason="reception")
    for args, permission in [
        (["report", "validate", report_id], "report.validate"),
        (["report", "delete", report_id, "--reason", "x"], "report.delete"),
        (["delivery", "retry", "--all-failed", "--reason", "x"], "delivery.retry"),
        (["identity", "resolve", "1", "--action", "close", "--reason", "x"], "identity.worklist"),
        (["export", "--out", str(EngineConfig.from_env().data_dir / "out")], "export"),
        (["user", "grant", "u.martin", "administrator", "--reason", "x"], "users.manage"),
    ]:
        refused = runner.invoke(app, [*args, "--by", "u.martin"])
        assert refused.exit_code == 1, refused.output
        assert refused.stderr == (
            f"error: u.martin lacks the permission {permission} (holds secretary; granted by the role "
            f"{' or '.join(r for r, allowed in ROLES.items() if permission in allowed)}: `ris user grant`)\n"
        )
    _unchanged(db_url, report_id)
    assert not (EngineConfig.from_env().data_dir / "out").exists()
    assert _users(db_url)[-1] == ("u.martin", "secretary")


def test_a_pro_sante_connect_login_maps_to_the_user_of_its_rpps(provider, db_url, acting_users, tmp_path):
    report_id = _draft_report(db_url)
    provider.state.behaviour.rpps = "10009876541"  # a real login, but not a user of this engine
    login.save(tmp_path, {"id_token": provider.state.id_token()})
    result = runner.invoke(app, ["report", "validate", report_id])
    assert result.exit_code == 1 and "10009876541: not a user of this engine" in result.stderr
    _unchanged(db_url, report_id)
    provider.state.behaviour.rpps = ADMIN
    login.save(tmp_path, {"id_token": provider.state.id_token()})
    acting = authorize(None, "report.validate")
    assert (acting.rpps, acting.method) == (ADMIN, "psc") and "ins.read" in acting.permissions


def test_the_demo_allowance_holds_in_its_own_folder_for_its_own_database_only(db_url, tmp_path, monkeypatch):
    with db.session_scope(db_url) as s:
        assert demo_users.set_up(s, tmp_path, db_url) == ["10001234567", "10001234568"]
    assert authorize("10001234568", "report.validate").method == "demo"
    with pytest.raises(ActorRefused, match="this site refuses --by"):
        authorize("10009876541", "report.validate")  # not one of the demo's
    # The same folder pointed at another database (a site's): the allowance does not apply.
    other = f"sqlite:///{tmp_path / 'site.db'}"
    db.upgrade(other)
    monkeypatch.setenv("RIS_DATABASE_URL", other)
    with pytest.raises(ActorRefused, match="this site refuses --by"):
        authorize("10001234567", "report.validate")
    with pytest.raises(ValueError, match="the demo's own database"), db.session_scope(other) as s:
        demo_users.set_up(s, tmp_path, other)
    with Session(db.get_engine(db_url)) as s:
        demo = {u.id: u.name for u in s.exec(select(RisUser))}
    assert demo == {"10001234567": "Émile LEFÈVRE", "10001234568": "Thérèse NGUYỄN"}


def test_each_role_gives_a_fixed_set_of_named_permissions():
    assert "ins.read" in permissions_of(["radiologist"]) and "insi.call" in permissions_of(["secretary"])
    assert "ins.read" not in permissions_of(["administrator"])  # running the site is not reading the INS
    assert "identity.superuser" in permissions_of(["identity-referent"])
    assert permissions_of(["gone"]) == frozenset()
