"""The audit trail on PostgreSQL (private cluster on loopback): the database itself refuses UPDATE, DELETE
and TRUNCATE of the entries and of their seals (triggers of migrations 0010 and 0011), whoever sends them;
writers only append, and the sealer chains in transaction order, never over an entry that a transaction
still running could precede; a row rewritten, deleted, slipped in or sealed twice once the guards are off
is found by `verify`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from ris.store import audit, db
from ris.store.models import AuditEntry, AuditSeal
from tests import pgcluster

pytestmark = pytest.mark.slow

_databases = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[pgcluster.PrivatePostgres]:
    if not pgcluster.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with pgcluster.PrivatePostgres() as running:
        yield running


@pytest.fixture
def pg(cluster: pgcluster.PrivatePostgres) -> Iterator[str]:
    """A migrated database of its own for each test: a trail one test breaks stays in that test."""
    name = f"audit{next(_databases)}"
    cluster.create_database(name)
    url = cluster.url(name)
    db.upgrade(url)
    yield url
    db.get_engine(url).dispose()


def write_entries(url: str, n: int, actor: str = "clerk-1") -> None:
    with db.session_scope(url) as s:
        for i in range(n):
            audit.record(s, actor=actor, action="test.entry", object_type="patient", object_id=i, n=i)


def seal(url: str) -> int | None:
    with db.session_scope(url) as s:
        return audit.seal(s)


def verify(url: str) -> audit.Verification:
    with Session(db.get_engine(url)) as s:
        return audit.verify(s)


def plain_sql(url: str, *statements: str) -> None:
    """The owner (here the superuser) past the ORM, in one transaction."""
    with db.get_engine(url).begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


FINGERPRINT = (
    "SELECT (SELECT md5(string_agg(e::text, ',' ORDER BY e.id)) FROM auditentry e), "
    "(SELECT md5(string_agg(s::text, ',' ORDER BY s.position)) FROM auditseal s)"
)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE auditentry SET actor = 'someone-else'",
        "DELETE FROM auditentry WHERE id = (SELECT min(id) FROM auditentry)",
        "TRUNCATE auditentry CASCADE",
        "UPDATE auditseal SET prev_hash = 'x'",
        "DELETE FROM auditseal WHERE position = 2",
        "TRUNCATE auditseal",
    ],
)
def test_postgresql_refuses_to_rewrite_the_audit_trail(pg: str, statement: str) -> None:
    write_entries(pg, 2)
    seal(pg)
    with db.get_engine(pg).connect() as connection:
        before = connection.exec_driver_sql(FINGERPRINT).one()
    refused = pytest.raises(sa.exc.DBAPIError, match="audit trail is append-only")
    with refused:  # plain SQL, as the superuser
        plain_sql(pg, statement)
    with refused, db.session_scope(pg) as s:  # bulk ORM statements
        s.connection().execute(sa.update(AuditEntry).values(actor="x"))
    with refused, db.session_scope(pg) as s:
        s.connection().execute(sa.delete(AuditSeal))
    with db.get_engine(pg).connect() as connection:
        assert connection.exec_driver_sql(FINGERPRINT).one() == before


def test_racing_writers_make_one_chain_and_a_rewrite_is_found(pg: str) -> None:
    def writer(actor: str) -> None:
        for _ in range(5):  # several transactions each: the sealers run between them
            write_entries(pg, 3, actor)

    writing = [threading.Thread(target=writer, args=(f"clerk-{i}",)) for i in range(4)]
    done = threading.Event()
    sealed_meanwhile: list[int | None] = []

    def sealer() -> None:
        while not done.is_set():
            sealed_meanwhile.append(seal(pg))

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    for thread in sealers + writing:
        thread.start()
    for thread in writing:
        thread.join()
    done.set()
    for thread in sealers:
        thread.join()
    seal(pg)  # what the last transactions wrote
    intact = verify(pg)
    assert (intact.entries, intact.awaiting, intact.problems) == (60, 0, [])
    assert sum(n or 0 for n in sealed_meanwhile) > 0  # the sealers worked while the writers wrote

    with db.get_engine(pg).connect() as connection:
        target = connection.exec_driver_sql("SELECT max(id) - 5 FROM auditentry").scalar_one()
    plain_sql(  # the owner first disables the guard, then rewrites
        pg,
        "ALTER TABLE auditentry DISABLE TRIGGER auditentry_append_only",
        f"UPDATE auditentry SET actor = 'forger' WHERE id = {target}",
        "ALTER TABLE auditentry ENABLE TRIGGER auditentry_append_only",
    )
    assert verify(pg).problems == [f"entry {target}: content differs from what was written"]


def _record(session: Session, actor: str) -> int:
    entry = audit.record(session, actor=actor, action="test.entry", object_type="patient", object_id=1)
    session.flush()
    return entry.id


def test_an_open_transaction_s_entry_waits_while_later_ones_are_sealed(pg: str) -> None:
    """`early` takes its transaction id first but writes its entry last; `late` writes its entry first and
    stays open. The chain never goes past a transaction still running: `early` is sealed at once, `late`
    and every transaction after it once `late` commits, in transaction order, whatever the entry ids."""
    engine = db.get_engine(pg)
    with Session(engine) as early, Session(engine) as late:
        early.scalar(sa.text("SELECT pg_current_xact_id()"))  # the smaller transaction id
        late_id = _record(late, "late")  # the smaller entry id
        early_id = _record(early, "early")
        early.commit()
        with db.session_scope(pg) as after:
            after_id = _record(after, "after")  # committed, but younger than `late`

        assert seal(pg) == 1  # `early` only
        waiting = verify(pg)
        assert (waiting.entries, waiting.awaiting, waiting.problems) == (1, 1, [])  # `late` is invisible
        late.commit()

    committed = verify(pg)  # `late`'s entry has the smallest id but is not "inserted": it comes next
    assert (committed.entries, committed.awaiting, committed.problems) == (1, 2, [])
    assert seal(pg) == 2
    with Session(engine) as s:
        order = s.exec(select(AuditSeal.entry_id).order_by(AuditSeal.position)).all()
    assert order == [early_id, late_id, after_id] and late_id < early_id
    assert verify(pg).problems == []


def test_a_reading_transaction_holds_nothing_back(pg: str) -> None:
    """Only transactions that wrote have an id: a long read (a report, `pg_dump`) never delays sealing."""
    with db.get_engine(pg).connect() as reader:
        reader.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        reader.exec_driver_sql("SELECT count(*) FROM auditentry").all()
        write_entries(pg, 2)
        assert seal(pg) == 2
        reader.exec_driver_sql("COMMIT")


def test_a_rolled_back_transaction_leaves_nothing_to_seal(pg: str) -> None:
    with pytest.raises(RuntimeError), db.session_scope(pg) as s:
        _record(s, "clerk-1")
        raise RuntimeError("boom")
    write_entries(pg, 1)
    assert seal(pg) == 1
    result = verify(pg)
    assert (result.entries, result.awaiting, result.problems) == (1, 0, [])


def test_two_sealers_at_once_one_works_and_the_other_returns(pg: str) -> None:
    write_entries(pg, 3)
    with db.session_scope(pg) as first:
        assert audit.seal(first) == 3
        with db.session_scope(pg) as second:
            assert audit.seal(second) is None  # at once, without waiting for the first
    assert seal(pg) == 0
    assert verify(pg).entries == 3


def test_entries_stamped_with_their_writing_transaction(pg: str) -> None:
    with db.session_scope(pg) as s:
        first, second = _record(s, "a"), _record(s, "b")
        xact = s.scalar(sa.text("SELECT pg_current_xact_id()::text::bigint"))
    with Session(db.get_engine(pg)) as s:
        stamps = s.exec(select(AuditEntry.xact_id).where(AuditEntry.id.in_([first, second]))).all()
    assert stamps == [xact, xact]


def _sealed_again(pg: str) -> str:
    """A seal of entry 3 that hashes right and follows the chain: only the count of its seals shows it."""
    with Session(db.get_engine(pg)) as s:
        head, entry = s.get(AuditSeal, 3).entry_hash, s.get(AuditEntry, 3)
        digest = audit.digest(entry, head)
    return (
        "INSERT INTO auditseal (position, entry_id, xact_id, prev_hash, entry_hash) "
        f"SELECT 4, 3, xact_id, '{head}', '{digest}' FROM auditentry WHERE id = 3"
    )


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (
            ["SET LOCAL session_replication_role = replica", "DELETE FROM auditentry WHERE id = 2"],
            "entry 2: sealed at position 2 but missing (deleted)",
        ),
        (  # an entry that claims an old transaction, below the sealed part of the chain
            [
                "INSERT INTO auditentry (at, actor, action, object_type, object_id, detail, xact_id) "
                "SELECT at, 'forger', action, object_type, object_id, detail, 1 FROM auditentry WHERE id = 2"
            ],
            "entry 4: not in the chain, which is sealed past it (inserted afterwards)",
        ),
        (["DROP INDEX ix_auditseal_entry_id", _sealed_again], "entry 3: sealed 2 times"),
    ],
    ids=["deleted", "inserted", "sealed-twice"],
)
def test_verify_finds_what_the_owner_changed_past_the_guards(pg: str, tamper: list, found: str) -> None:
    write_entries(pg, 3)
    seal(pg)
    plain_sql(pg, *(step(pg) if callable(step) else step for step in tamper))
    assert verify(pg).problems == [found]
    seal(pg)  # a sealer passing by afterwards hides nothing
    assert verify(pg).problems == [found]
