"""Migration 0011 moves the hash chain of an existing trail (0010: the hashes on the entries, in id order)
into the seal table as it is: `verify` reaches the head the operator kept with nothing awaiting, later
entries extend the same chain, and a change made before the migration is still found after it. The
downgrade goes back to 0010's shape, chained in id order. On SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlmodel
from alembic import command
from sqlmodel import Session, select

from ris.store import audit, db
from ris.store.audit_chain import GENESIS, entry_digest
from ris.store.models import AuditSeal
from tests import pgcluster

ENTRY_0010 = sa.table(
    "auditentry",
    *(sa.column(c) for c in ("id", "actor", "action", "object_type", "object_id", "os_user", "host")),
    *(sa.column(c) for c in ("prev_hash", "entry_hash")),
    sa.column("at", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("detail", sa.JSON()),
)
CONTENT = ("at", "actor", "action", "object_type", "object_id", "detail", "os_user", "host")
_databases = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[pgcluster.PrivatePostgres]:
    if not pgcluster.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with pgcluster.PrivatePostgres() as running:
        yield running


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ris.db'}"
    else:
        cluster = request.getfixturevalue("cluster")
        name = f"migration{next(_databases)}"
        cluster.create_database(name)
        url = cluster.url(name)
    yield url
    db.get_engine(url).dispose()


def trail_at_0010(url: str, n: int = 5) -> list[str]:
    """A trail as 0010's writers left it, each entry hashed at write time after the one before; the
    hashes (the last one is the head the operator kept off the machine)."""
    db.upgrade(url, "0010")
    hashes, prev = [], GENESIS
    with db.get_engine(url).begin() as connection:
        for i in range(n):
            content = {
                "at": dt.datetime(2026, 12, 1, 9, i, 30, 123456, tzinfo=dt.UTC),
                "actor": "clerk-1",
                "action": "test.entry",
                "object_type": "patient",
                "object_id": str(i),
                "detail": {"n": i, "motif": "contrôle"},
                "os_user": "ris",
                "host": "box",
            }
            digest = entry_digest(prev, **content)
            connection.execute(ENTRY_0010.insert().values(**content, prev_hash=prev, entry_hash=digest))
            hashes.append(prev := digest)
    return hashes


def write_and_seal(url: str, n: int) -> int | None:
    with db.session_scope(url) as s:
        for i in range(n):
            audit.record(s, actor="clerk-2", action="test.later", object_type="patient", object_id=i)
    with db.session_scope(url) as s:
        return audit.seal(s)


def verify(url: str) -> audit.Verification:
    with Session(db.get_engine(url)) as s:
        return audit.verify(s)


def test_the_existing_chain_moves_as_it_is(empty_url: str) -> None:
    hashes = trail_at_0010(empty_url)
    db.upgrade(empty_url)
    moved = verify(empty_url)
    assert (moved.entries, moved.awaiting, moved.problems, moved.head) == (5, 0, [], hashes[-1])
    with Session(db.get_engine(empty_url)) as s:
        assert s.exec(select(AuditSeal.entry_hash).order_by(AuditSeal.position)).all() == hashes

    assert write_and_seal(empty_url, 2) == 2  # the engine's entries extend the same chain
    extended = verify(empty_url)
    assert (extended.entries, extended.awaiting, extended.problems) == (7, 0, [])
    with Session(db.get_engine(empty_url)) as s:
        assert s.get(AuditSeal, 6).prev_hash == hashes[-1]


def test_a_change_made_before_the_migration_is_still_found_after_it(empty_url: str) -> None:
    trail_at_0010(empty_url)
    postgres = empty_url.startswith("postgresql")
    guard = (
        ("ALTER TABLE auditentry DISABLE TRIGGER auditentry_append_only",)
        if postgres
        else ("DROP TRIGGER auditentry_no_update",)
    )
    with db.get_engine(empty_url).begin() as connection:  # the owner, past the guard, before the upgrade
        for statement in (*guard, "UPDATE auditentry SET actor = 'forger' WHERE id = 2"):
            connection.exec_driver_sql(statement)
    db.upgrade(empty_url)
    assert verify(empty_url).problems == ["entry 2: content differs from what was written"]


def test_the_downgrade_chains_in_id_order_and_the_upgrade_moves_it_again(empty_url: str) -> None:
    hashes = trail_at_0010(empty_url)
    db.upgrade(empty_url)
    write_and_seal(empty_url, 2)
    command.downgrade(db.alembic_config(empty_url), "0010")

    with db.get_engine(empty_url).connect() as connection:
        rows = connection.execute(sa.select(ENTRY_0010).order_by(ENTRY_0010.c.id)).mappings().all()
    prev = GENESIS
    for row in rows:  # what 0010's verify checked
        assert row["prev_hash"] == prev
        prev = entry_digest(prev, **{c: row[c] for c in CONTENT})
        assert row["entry_hash"] == prev
    assert [row["entry_hash"] for row in rows[:5]] == hashes  # same entries, same order: same hashes
    refused = pytest.raises(sa.exc.DBAPIError, match="audit trail is append-only")
    with refused, db.get_engine(empty_url).begin() as connection:  # the guard is back
        connection.exec_driver_sql("UPDATE auditentry SET actor = 'x'")

    db.upgrade(empty_url)
    again = verify(empty_url)
    assert (again.entries, again.awaiting, again.problems, again.head) == (7, 0, [], prev)
