"""The audit trail is append-only in the database and hash-chained by the sealer (`ris audit seal`,
`ris audit verify`); the data the engine creates is private to its user; `ris db backup` copies a live
database."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import audit, db
from ris.store.models import AuditEntry, AuditSeal
from tests.cli_process import isolated_env, run_ris

NOT_FOLLOWING = (
    "does not follow the entry sealed before it (an entry or its seal was deleted, inserted or moved)"
)
REWRITTEN = "content differs from what was written"


def write_entries(url: str, n: int) -> None:
    with db.session_scope(url) as s:
        for i in range(n):
            audit.record(s, actor="clerk-1", action="test.entry", object_type="patient", object_id=i, n=i)


def seal(url: str) -> int | None:
    with db.session_scope(url) as s:
        return audit.seal(s)


def verify(url: str) -> audit.Verification:
    with Session(db.get_engine(url)) as s:
        return audit.verify(s)


def plain_sql(url: str, *statements: str | tuple[str, tuple]) -> None:
    """What a person with the database file in hand does, past the ORM and its hooks (and with foreign
    keys unchecked, as sqlite3 leaves them)."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        for statement in statements:
            connection.execute(*((statement,) if isinstance(statement, str) else statement))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE auditentry SET actor = 'someone-else'",
        "DELETE FROM auditentry WHERE id = 1",
        "UPDATE auditseal SET prev_hash = 'x'",
        "DELETE FROM auditseal WHERE position = 2",
    ],
)
def test_the_database_refuses_to_rewrite_the_audit_trail(db_url: str, statement: str) -> None:
    write_entries(db_url, 2)
    seal(db_url)
    with pytest.raises(sqlite3.IntegrityError, match="audit trail is append-only"):
        plain_sql(db_url, statement)
    with db.session_scope(db_url) as s, pytest.raises(sa.exc.IntegrityError):  # bulk ORM statements too
        s.connection().execute(sa.update(AuditEntry).values(actor="x"))
    with db.session_scope(db_url) as s:  # and the ORM's own
        s.get(AuditSeal, 1).prev_hash = "x"
        with pytest.raises(audit.AuditTrailIsAppendOnly, match="audit seal 1 cannot be changed"):
            s.flush()
        s.rollback()
    assert verify(db_url).problems == []


def test_writers_append_and_the_sealer_chains_what_they_wrote(session: Session, db_url: str) -> None:
    write_entries(db_url, 3)
    written = verify(db_url)
    assert (written.entries, written.awaiting, written.problems) == (0, 3, [])  # nothing chained at write
    assert seal(db_url) == 3
    assert seal(db_url) == 0  # nothing twice
    entries = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    seals = session.exec(select(AuditSeal).order_by(AuditSeal.position)).all()
    assert all(e.os_user and e.host for e in entries)
    assert [s.entry_id for s in seals] == [e.id for e in entries]  # SQLite: id order is commit order
    assert seals[0].prev_hash == "" and [s.prev_hash for s in seals[1:]] == [s.entry_hash for s in seals[:-1]]
    assert [s.entry_hash for s in seals] == [
        audit.digest(e, s.prev_hash) for e, s in zip(entries, seals, strict=True)
    ]
    sealed = verify(db_url)
    assert (sealed.entries, sealed.awaiting, sealed.problems, sealed.head) == (3, 0, [], seals[-1].entry_hash)

    write_entries(db_url, 2)  # later entries extend the same chain
    assert seal(db_url) == 2
    extended = verify(db_url)
    assert (extended.entries, extended.awaiting, extended.problems) == (5, 0, [])


def test_a_rolled_back_unit_of_work_leaves_nothing_to_seal(db_url: str) -> None:
    with pytest.raises(RuntimeError), db.session_scope(db_url) as s:
        audit.record(s, actor="clerk-1", action="test.entry", object_type="patient", object_id=1)
        s.flush()
        raise RuntimeError("boom")
    assert seal(db_url) == 0
    nothing = verify(db_url)
    assert (nothing.entries, nothing.awaiting, nothing.problems) == (0, 0, [])


def test_the_seal_batch_is_bounded_and_the_next_round_goes_on(db_url: str) -> None:
    write_entries(db_url, 5)
    with db.session_scope(db_url) as s:
        assert audit.seal(s, limit=2) == 2
    with Session(db.get_engine(db_url)) as s:
        assert audit.chain_state(s) == audit.ChainState(2, verify(db_url).head, 3)
    assert seal(db_url) == 3 and verify(db_url).problems == []


def _sealed_again(url: str) -> tuple[str, tuple]:
    """A seal of entry 3 that hashes right and follows the chain: only the count of its seals shows it."""
    with Session(db.get_engine(url)) as s:
        head, entry = s.get(AuditSeal, 3).entry_hash, s.get(AuditEntry, 3)
        forged = (4, 3, head, audit.digest(entry, head))
    return "INSERT INTO auditseal (position, entry_id, prev_hash, entry_hash) VALUES (?, ?, ?, ?)", forged


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (["UPDATE auditentry SET detail = '{\"n\": 99}' WHERE id = 2"], [f"entry 2: {REWRITTEN}"]),
        (["DELETE FROM auditentry WHERE id = 2"], ["entry 2: sealed at position 2 but missing (deleted)"]),
        (
            ["DELETE FROM auditseal WHERE entry_id = 2", "DELETE FROM auditentry WHERE id = 2"],
            [f"entry 3: {NOT_FOLLOWING}"],
        ),
        (  # inserted among the sealed entries, under an id the chain went past
            [
                "INSERT INTO auditentry (id, at, actor, action, object_type, object_id, detail) "
                "SELECT 0, at, 'forger', action, object_type, object_id, detail FROM auditentry WHERE id = 2"
            ],
            ["entry 0: not in the chain, which is sealed past it (inserted afterwards)"],
        ),
        (  # inserted with a seal copied from the last one
            [
                "INSERT INTO auditentry (at, actor, action, object_type, object_id, detail) "
                "SELECT at, 'forger', action, object_type, object_id, detail FROM auditentry WHERE id = 3",
                "INSERT INTO auditseal SELECT 4, 4, xact_id, prev_hash, entry_hash FROM auditseal "
                "WHERE position = 3",
            ],
            [f"entry 4: {NOT_FOLLOWING}", f"entry 4: {REWRITTEN}"],
        ),
        (["DROP INDEX ix_auditseal_entry_id", _sealed_again], ["entry 3: sealed 2 times"]),
    ],
    ids=["rewritten", "deleted", "deleted-with-its-seal", "inserted", "inserted-with-a-seal", "sealed-twice"],
)
def test_verify_finds_what_plain_sql_changed(db_url: str, tamper: list, found: list[str]) -> None:
    write_entries(db_url, 3)
    seal(db_url)
    # someone with the file drops the triggers first, then rewrites
    plain_sql(
        db_url,
        *(f"DROP TRIGGER {t}_no_{v}" for t in ("auditentry", "auditseal") for v in ("update", "delete")),
    )
    plain_sql(db_url, *(s(db_url) if callable(s) else s for s in tamper))
    assert verify(db_url).problems == found
    seal(db_url)  # a sealer passing by afterwards hides nothing
    assert verify(db_url).problems == found


TAMPERED = {  # what plain SQL does to a sealed trail -> what `ris audit verify` names
    "UPDATE auditentry SET detail = '{\"n\": 99}' WHERE id = 2": "entry 2: content differs",
    "DELETE FROM auditentry WHERE id = 2": "entry 2: sealed at position 2 but missing",
    "INSERT INTO auditentry (id, at, actor, action, object_type, object_id, detail) "
    "SELECT 0, at, 'forger', action, object_type, object_id, detail FROM auditentry WHERE id = 2": (
        "entry 0: not in the chain"
    ),
}


@pytest.mark.slow  # the CLI as a process
def test_ris_audit_verify_finds_what_plain_sql_changed(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    url = f"sqlite:///{tmp_path / 'ris.db'}"
    assert run_ris(env, "db", "upgrade").returncode == 0
    write_entries(url, 3)
    db.clear_engines()
    sealed = run_ris(env, "audit", "seal")
    assert sealed.returncode == 0 and "sealed 3 entries: 3 in the chain, head " in sealed.stdout
    intact = run_ris(env, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit trail intact: 3 entries sealed, 0 awaiting sealing, head " in intact.stdout
    for n, (tamper, found) in enumerate(TAMPERED.items()):  # each on its own copy of the sealed trail
        copy = tmp_path / f"tampered-{n}.db"
        with sqlite3.connect(tmp_path / "ris.db") as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the WAL's pages included
        # someone with the file drops the triggers first, then rewrites
        plain_sql(
            f"sqlite:///{copy}",
            "DROP TRIGGER auditentry_no_update",
            "DROP TRIGGER auditentry_no_delete",
            tamper,
        )
        broken = run_ris({**env, "RIS_DATABASE_URL": f"sqlite:///{copy}"}, "audit", "verify")
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
