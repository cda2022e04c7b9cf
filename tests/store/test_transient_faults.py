"""A transient database fault ends an attempt, never a unit of work: the unit runs again whole, in a fresh
session, and commits once. Real faults on real databases: a PostgreSQL deadlock between two
transactions, a backend killed mid-unit, SQLite's `database is locked` from a writer that holds its lock
past the busy timeout. Anything else (a constraint, an error of the unit itself) propagates at once, and
the attempts are bounded."""

from __future__ import annotations

import asyncio
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from ris.site.engine import DatabaseRetry, EngineConfigError
from ris.store import claims, db
from ris.store.models import EngineWorker
from ris.store.transient import TransientDatabaseError, describe, is_transient
from tests.sqlite_lock import WriteLock

SECRET = "DUPONT-1979-03-28"  # a value bound to a statement: it must never reach a log or an error


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short waits, SQLite's busy timeout at a tenth of a second: the faults below take moments."""
    monkeypatch.setenv("RIS_DB_RETRY_DELAY_SECONDS", "0.02")
    monkeypatch.setenv("RIS_DB_RETRY_MAX_DELAY_SECONDS", "0.1")
    monkeypatch.setenv("RIS_SQLITE_BUSY_TIMEOUT_SECONDS", "0.1")


# --- classification --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03", "57P01", "57P02", "57P03", "08006", "08001"])
def test_postgresql_faults_that_may_pass_are_transient(sqlstate: str):
    error = psycopg.errors.lookup(sqlstate)()  # the driver's own class for this SQLSTATE
    assert is_transient(sa.exc.OperationalError("UPDATE delivery SET ...", None, error))
    assert describe(sa.exc.OperationalError("UPDATE", None, error)).endswith(f"SQLSTATE {sqlstate}")


@pytest.mark.parametrize("sqlstate", ["23505", "23503", "42P01", "22001", "42501"])
def test_constraints_and_mistakes_are_not_transient(sqlstate: str):
    error = psycopg.errors.lookup(sqlstate)()
    wrapped = sa.exc.DBAPIError.instance("INSERT", None, error, psycopg.Error)
    assert not is_transient(wrapped)


def test_other_errors_are_not_transient():
    assert not is_transient(ValueError("a rule"))
    assert not is_transient(None)
    assert is_transient(sa.exc.DisconnectionError("pool pre-ping failed"))


def test_a_postgresql_server_that_refuses_connections_is_waited_for_then_reported(
    fast_retries, monkeypatch: pytest.MonkeyPatch
):
    """A server restarting refuses connections for a moment: no SQLSTATE, no statement ran yet."""
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "3")
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/ris"
    runs: list[int] = []
    try:
        with pytest.raises(TransientDatabaseError, match="over 3 attempts") as raised:
            db.in_unit_of_work(
                lambda session: runs.append(session.execute(sa.text("SELECT 1")).scalar()), url
            )
    finally:
        db.get_engine(url).dispose()
    assert runs == [] and is_transient(raised.value.__cause__)


def test_bad_retry_settings_are_refused_with_the_variable_and_the_rule(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "0")
    with pytest.raises(EngineConfigError, match=r"RIS_DB_RETRY_ATTEMPTS='0': must be a whole number ≥ 1"):
        DatabaseRetry.from_env()
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("RIS_DB_RETRY_DELAY_SECONDS", "soon")
    with pytest.raises(EngineConfigError, match=r"RIS_DB_RETRY_DELAY_SECONDS='soon': must be a number ≥ 0"):
        DatabaseRetry.from_env()
    monkeypatch.delenv("RIS_DB_RETRY_DELAY_SECONDS")
    assert DatabaseRetry.from_env() == DatabaseRetry(attempts=3)


# --- SQLite: `database is locked` once the busy timeout passed ------------------------------------------


@pytest.fixture
def write_lock(db_url: str) -> Iterator[WriteLock]:
    lock = WriteLock(db_url)
    yield lock
    lock.release()


def _workers(url: str | None = None) -> list[str]:
    with db.session_scope(url) as session:
        return list(session.exec(select(EngineWorker.id)))


def _registering(runs: list[int], worker_id: str = "w1") -> Callable[[Session], None]:
    def work(session: Session) -> None:
        runs.append(1)
        claims.register_worker(session, worker_id, "worker", "host", 4242)

    return work


def test_sqlite_locked_past_its_busy_timeout_is_run_again_once_the_lock_is_let_go(
    fast_retries, db_url: str, write_lock: WriteLock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "40")  # 40 x (0.1 s busy + a pause): the lock goes first
    threading.Timer(0.8, write_lock.release).start()
    runs: list[int] = []
    started = time.monotonic()
    db.in_unit_of_work(_registering(runs))
    assert time.monotonic() - started >= 0.7  # it did wait for the other writer
    assert len(runs) >= 2  # met `database is locked` at least once, then ran again
    assert _workers() == ["w1"]  # and committed once


def test_the_attempts_are_bounded_and_nothing_is_stored(
    fast_retries, db_url: str, write_lock: WriteLock, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "3")
    runs: list[int] = []
    with pytest.raises(TransientDatabaseError) as raised:
        db.in_unit_of_work(_registering(runs))
    assert len(runs) == 3 and raised.value.attempts == 3
    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    assert "over 3 attempts (OperationalError, SQLITE_BUSY: database is locked)" in str(raised.value)
    kept = pickle.loads(pickle.dumps(raised.value))  # as Prefect may keep a failed task's exception
    assert str(kept) == str(raised.value) and kept.attempts == 3 and is_transient(kept)
    retries = [r.getMessage() for r in caplog.records if r.name == "ris.store.db"]
    assert len(retries) == 2 and all("(OperationalError, SQLITE_BUSY)" in line for line in retries)
    write_lock.release()
    assert _workers() == []


def test_an_integrity_error_is_not_retried(fast_retries, db_url: str):
    db.in_unit_of_work(_registering([]))
    runs: list[int] = []
    with pytest.raises(sa.exc.IntegrityError):
        db.in_unit_of_work(_registering(runs))  # the same worker id again
    assert runs == [1]


def test_an_error_of_the_unit_itself_is_not_retried_and_undoes_the_unit(fast_retries, db_url: str):
    runs: list[int] = []

    def work(session: Session) -> None:
        _registering(runs)(session)
        session.flush()
        raise ValueError("a rule of the unit")

    with pytest.raises(ValueError, match="a rule of the unit"):
        db.in_unit_of_work(work)
    assert runs == [1] and _workers() == []


async def test_the_async_unit_of_work_waits_in_the_event_loop(
    fast_retries, db_url: str, write_lock: WriteLock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "40")
    asyncio.get_running_loop().call_later(0.8, write_lock.release)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beside = asyncio.create_task(ticker())
    try:
        await db.unit_of_work(claims.register_worker, "w2", "worker", "host", 4242)
    finally:
        beside.cancel()
    assert _workers() == ["w2"]
    assert ticks >= 30  # the loop kept serving other runs while this unit waited for the lock


async def test_the_async_unit_of_work_gives_up_with_a_transient_error(
    fast_retries, db_url: str, write_lock: WriteLock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "2")
    with pytest.raises(TransientDatabaseError, match="over 2 attempts"):
        await db.unit_of_work(claims.register_worker, "w3", "worker", "host", 4242)


# --- PostgreSQL: a deadlock, a killed backend ------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(pg_url: str) -> Iterator[str]:
    """Two rows to lock in opposite orders, and a log of the units that committed."""
    with db.get_engine(pg_url).begin() as connection:
        connection.exec_driver_sql("CREATE TABLE probe (id int PRIMARY KEY, n int NOT NULL, note text)")
        connection.exec_driver_sql("INSERT INTO probe VALUES (1, 0, NULL), (2, 0, NULL)")
        connection.exec_driver_sql("CREATE TABLE probe_log (id serial PRIMARY KEY, who text NOT NULL)")
    yield pg_url
    with db.get_engine(pg_url).begin() as connection:
        connection.exec_driver_sql("DROP TABLE probe, probe_log")


def _reset(url: str) -> None:
    with db.get_engine(url).begin() as connection:
        connection.exec_driver_sql("UPDATE probe SET n = 0, note = NULL")
        connection.exec_driver_sql("DELETE FROM probe_log")


def _logged(url: str) -> list[str]:
    with db.get_engine(url).connect() as connection:
        return list(connection.exec_driver_sql("SELECT who FROM probe_log ORDER BY who").scalars())


BUMP = sa.text("UPDATE probe SET n = n + 1, note = :note WHERE id = :id")
LOG = sa.text("INSERT INTO probe_log (who) VALUES (:who)")


@pytest.mark.slow
def test_a_postgresql_deadlock_victim_runs_again_and_each_unit_commits_once(fast_retries, probe: str, caplog):
    _reset(probe)
    both_hold_their_first_row = threading.Barrier(2, timeout=20)
    runs = {"a": 0, "b": 0}
    errors: list[BaseException] = []

    def unit(name: str, first: int, second: int) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            runs[name] += 1
            session.execute(BUMP, {"note": SECRET, "id": first})
            if runs[name] == 1:
                both_hold_their_first_row.wait()  # each now asks for the row the other holds
            session.execute(BUMP, {"note": SECRET, "id": second})
            session.execute(LOG, {"who": name})

        return work

    def run(name: str, first: int, second: int) -> None:
        try:
            db.in_unit_of_work(unit(name, first, second), probe)
        except BaseException as exc:  # pragma: no cover - what this test guards against
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("a", 1, 2)), threading.Thread(target=run, args=("b", 2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(runs.values()) == [1, 2]  # PostgreSQL chose one victim; it ran again, once
    assert _logged(probe) == ["a", "b"]  # each unit committed exactly once
    with db.get_engine(probe).connect() as connection:
        assert dict(connection.exec_driver_sql("SELECT id, n FROM probe").all()) == {1: 2, 2: 2}
    [retry] = [r.getMessage() for r in caplog.records if r.name == "ris.store.db"]
    assert "(DeadlockDetected, SQLSTATE 40P01) on attempt 1 of 6" in retry
    assert SECRET not in caplog.text


@pytest.mark.slow
def test_a_backend_killed_mid_unit_is_run_again_on_a_fresh_connection(fast_retries, probe: str, caplog):
    _reset(probe)
    admin_dsn = sa.make_url(probe).set(drivername="postgresql").render_as_string(hide_password=False)
    backends: list[int] = []

    def work(session: Session) -> None:
        backends.append(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        session.execute(LOG, {"who": "killed"})
        if len(backends) == 1:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:  # waits until it is gone
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (backends[0],))
        session.execute(BUMP, {"note": SECRET, "id": 1})

    db.in_unit_of_work(work, probe)
    assert len(backends) == 2 and backends[0] != backends[1]
    assert _logged(probe) == ["killed"]
    [retry] = [r.getMessage() for r in caplog.records if r.name == "ris.store.db"]
    assert "(AdminShutdown, SQLSTATE 57P01, connection lost) on attempt 1" in retry


@pytest.mark.slow
def test_an_integrity_error_on_postgresql_is_not_retried(fast_retries, probe: str):
    runs: list[int] = []

    def work(session: Session) -> None:
        runs.append(1)
        session.execute(sa.text("INSERT INTO probe VALUES (1, 0, :note)"), {"note": SECRET})

    with pytest.raises(sa.exc.IntegrityError) as raised:
        db.in_unit_of_work(work, probe)
    assert runs == [1] and not is_transient(raised.value)
    assert SECRET not in str(raised.value)  # engines hide parameters
