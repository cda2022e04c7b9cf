"""The audit trail is append-only in the database and hash-chained (`ris audit verify`); the data the
engine creates is private to its user; `ris db backup` copies a live database."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import audit, db
from ris.store.models import AuditEntry
from tests.cli_process import isolated_env, run_ris


def write_entries(url: str, n: int) -> None:
    with db.session_scope(url) as s:
        for i in range(n):
            audit.record(s, actor="clerk-1", action="test.entry", object_type="patient", object_id=i, n=i)


def plain_sql(url: str, *statements: str) -> None:
    """What a person with the database file in hand does, past the ORM and its hooks."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        for statement in statements:
            connection.execute(statement)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE auditentry SET actor = 'someone-else'", "DELETE FROM auditentry WHERE id = 1"],
)
def test_the_database_refuses_to_rewrite_the_audit_trail(db_url: str, statement: str) -> None:
    write_entries(db_url, 2)
    with pytest.raises(sqlite3.IntegrityError, match="audit trail is append-only"):
        plain_sql(db_url, statement)
    with db.session_scope(db_url) as s, pytest.raises(sa.exc.IntegrityError):  # bulk ORM statements too
        s.connection().execute(sa.update(AuditEntry).values(actor="x"))


def test_entries_are_chained_and_carry_the_os_user_and_host(session: Session, db_url: str) -> None:
    write_entries(db_url, 3)
    entries = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert entries[0].prev_hash == "" and all(e.os_user and e.host for e in entries)
    assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
    assert audit.verify(session).problems == []


@pytest.mark.slow  # the CLI as a process
@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        ("UPDATE auditentry SET detail = '{\"n\": 99}' WHERE id = 2", "entry 2: content differs"),
        ("DELETE FROM auditentry WHERE id = 2", "entry 3: does not follow"),
        (
            "INSERT INTO auditentry (at, actor, action, object_type, object_id, detail, prev_hash, "
            "entry_hash) SELECT at, 'forger', action, object_type, object_id, detail, prev_hash, entry_hash "
            "FROM auditentry WHERE id = 3",
            "entry 4: content differs",
        ),
    ],
)
def test_ris_audit_verify_finds_what_plain_sql_changed(tmp_path: Path, tamper: str, found: str) -> None:
    env = isolated_env(tmp_path)
    url = f"sqlite:///{tmp_path / 'ris.db'}"
    assert run_ris(env, "db", "upgrade").returncode == 0
    write_entries(url, 3)
    db.clear_engines()
    intact = run_ris(env, "audit", "verify")
    assert intact.returncode == 0 and "audit trail intact: 3 entries, head " in intact.stdout
    # someone with the file drops the triggers first, then rewrites
    plain_sql(url, "DROP TRIGGER auditentry_no_update", "DROP TRIGGER auditentry_no_delete", tamper)
    broken = run_ris(env, "audit", "verify")
    assert broken.returncode == 1, broken.stdout
    assert found in broken.stderr and "error: audit trail broken" in broken.stderr
    assert "Traceback" not in broken.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow  # the CLI as a process
def test_the_data_folder_and_the_database_the_engine_creates_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "ris"
    env = isolated_env(data)
    done = run_ris(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700 and mode(data.parent) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith("ris.db")]
    assert files and {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


@pytest.mark.slow  # the CLI as a process
def test_db_backup_copies_a_live_database_into_a_private_file(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    url = f"sqlite:///{tmp_path / 'ris.db'}"
    assert run_ris(env, "db", "upgrade").returncode == 0
    write_entries(url, 5)  # the engine keeps its connection open: the copy is taken live
    target = tmp_path / "backup.db"
    done = run_ris(env, "db", "backup", str(target))
    assert done.returncode == 0, done.stderr
    assert mode(target) == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT count(*) FROM auditentry").fetchone()[0] == 5
    again = run_ris(env, "db", "backup", str(target))
    assert again.returncode == 1 and "already exists" in again.stderr
    db.clear_engines()
