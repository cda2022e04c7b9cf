"""The audit trail on PostgreSQL (private cluster on loopback): the database itself refuses UPDATE, DELETE
and TRUNCATE of `auditentry` (trigger of migration 0010), whoever sends them; writers racing each other
still make one chain; a row rewritten once the triggers are disabled is found by the hash chain."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from ris.store import audit, db
from ris.store.models import AuditEntry

pytestmark = pytest.mark.slow


def write_entries(url: str, n: int, actor: str = "clerk-1") -> None:
    with db.session_scope(url) as s:
        for i in range(n):
            audit.record(s, actor=actor, action="test.entry", object_type="patient", object_id=i, n=i)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE auditentry SET actor = 'someone-else'",
        "DELETE FROM auditentry WHERE id = (SELECT min(id) FROM auditentry)",
        "TRUNCATE auditentry",
    ],
)
def test_postgresql_refuses_to_rewrite_the_audit_trail(pg_url: str, statement: str) -> None:
    write_entries(pg_url, 2)
    with db.get_engine(pg_url).connect() as connection:
        before = connection.exec_driver_sql("SELECT count(*), max(entry_hash) FROM auditentry").one()
    refused = pytest.raises(sa.exc.DBAPIError, match="audit trail is append-only")
    with refused, db.get_engine(pg_url).begin() as connection:  # plain SQL, as the superuser
        connection.exec_driver_sql(statement)
    with refused, db.session_scope(pg_url) as s:  # a bulk ORM statement
        s.connection().execute(sa.update(AuditEntry).values(actor="x"))
    with db.get_engine(pg_url).connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*), max(entry_hash) FROM auditentry").one() == before


def test_racing_writers_make_one_chain_and_a_rewrite_is_found(pg_url: str) -> None:
    writers = [threading.Thread(target=write_entries, args=(pg_url, 15, f"clerk-{i}")) for i in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    with Session(db.get_engine(pg_url)) as s:
        intact = audit.verify(s)
    assert intact.problems == [] and intact.entries >= 60

    with db.get_engine(pg_url).begin() as connection:  # the owner first disables the guard, then rewrites
        connection.exec_driver_sql("ALTER TABLE auditentry DISABLE TRIGGER auditentry_append_only")
        target = connection.exec_driver_sql("SELECT max(id) - 5 FROM auditentry").scalar_one()
        connection.execute(sa.text("UPDATE auditentry SET actor = 'forger' WHERE id = :i"), {"i": target})
        connection.exec_driver_sql("ALTER TABLE auditentry ENABLE TRIGGER auditentry_append_only")
    with Session(db.get_engine(pg_url)) as s:
        broken = audit.verify(s)
    assert broken.problems == [f"entry {target}: content differs from what was written"]
