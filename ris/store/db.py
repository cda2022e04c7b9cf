"""Database engine, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, create_engine

from ris.site.engine import DatabaseRetry, EngineConfig, private_dir
from ris.store import audit  # noqa: F401  registers the audit trail's guard and hash chain on every session
from ris.store.transient import TransientDatabaseError, backoff_s, describe, is_transient

MIGRATIONS = Path(__file__).parent / "migrations"
UNIT_OF_WORK = "ris_unit_of_work"  # execution option of the sessions that may write
P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; WAL + busy timeout let the CLI, the workers and the
    # listeners share one file.
    busy_ms = round(EngineConfig.from_env().db_retry.sqlite_busy_timeout_s * 1000)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # A deferred transaction that reads, then writes after another writer committed, fails at once
    # with "database is locked" (SQLITE_BUSY_SNAPSHOT): the busy timeout cannot help it. A unit of work
    # takes the write lock at BEGIN and so waits its turn instead (WAL readers are never blocked).
    # Other sessions keep the driver's own handling (reads outside a transaction, BEGIN before a write).
    if connection.get_execution_options().get(UNIT_OF_WORK, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, sa.Engine] = {}


def _private_sqlite_file(path: Path) -> None:
    """The stored HL7 carries names and INS: a folder and a database the engine creates are its user's
    alone (0700, 0600; SQLite gives its -wal and -shm files the database file's mode)."""
    if str(path) in ("", ":memory:"):
        return
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is an empty database
        path.chmod(0o600)  # whatever the umask


def get_engine(url: str | None = None) -> sa.Engine:
    """The engine of `url`, or of RIS_DATABASE_URL as it is now (read at each call); one per URL."""
    url = url or EngineConfig.from_env().database_url
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite:///"):
            _private_sqlite_file(Path(url.removeprefix("sqlite:///")))
        # hide_parameters: a database error that reaches a log or a Prefect state never quotes a value
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
        _engines[url] = engine
    return engine


def clear_engines() -> None:
    """Close every pooled connection (tests switch databases; SQLite folds its WAL on the last close)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error. Run once: callers that
    should survive a deadlock or a lost connection use `in_unit_of_work` or `unit_of_work`."""
    with Session(
        get_engine(url).execution_options(**{UNIT_OF_WORK: True}), expire_on_commit=False
    ) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _once(work: Callable[[Session], T], url: str | None) -> T:
    with session_scope(url) as session:
        return work(session)


def _wait_before_next(exc: Exception, attempt: int, policy: DatabaseRetry, what: str) -> float:
    """How long to wait before running the unit again after `exc` ended attempt `attempt`; raises
    TransientDatabaseError when that was the last attempt. Non-transient errors never get here."""
    if attempt >= policy.attempts:
        raise TransientDatabaseError.after(exc, attempt) from exc
    delay = backoff_s(attempt, policy.first_delay_s, policy.max_delay_s)
    log.warning(
        "unit of work %s: transient database fault (%s) on attempt %s of %s, run again in %.2f s",
        what,
        describe(exc),
        attempt,
        policy.attempts,
        delay,
    )
    return delay


def _name(fn: Callable[..., object]) -> str:
    """`module.function` of a unit, a lambda named by the function it is written in (code names only,
    never its arguments)."""
    name = getattr(fn, "__qualname__", type(fn).__name__).replace(".<locals>", "").removesuffix(".<lambda>")
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else name


def in_unit_of_work(work: Callable[[Session], T], url: str | None = None) -> T:
    """`work(session)` as one unit of work (blocking), run again whole in a fresh session when it meets a
    transient database fault (ris.store.transient), with backoff and jitter, up to the configured
    attempts (EngineConfig.db_retry). Any other error propagates at once. `work` must do nothing but
    database work: it may run more than once. A failed run committed nothing, but for a connection lost
    during COMMIT itself, whose outcome only the server knows: the run after it then finds its work done."""
    policy = EngineConfig.from_env().db_retry
    attempt = 1
    while True:
        try:
            return _once(work, url)
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = _wait_before_next(exc, attempt, policy, _name(work))
        time.sleep(delay)
        attempt += 1


async def unit_of_work(fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(session, ...)` as one unit of work in a thread: many runs share a worker's event loop, and a
    database call that waits (a lock, a slow disk, the network to PostgreSQL) must not stall the others.
    Run again whole on a transient fault, as `in_unit_of_work` does, waiting in the event loop (a thread
    would be held for nothing); still failing after the last attempt: TransientDatabaseError, which
    the tasks' retry conditions retry (tasks.run_context)."""
    policy = EngineConfig.from_env().db_retry
    attempt = 1
    while True:
        try:
            return await asyncio.to_thread(_once, lambda session: fn(session, *args, **kwargs), None)
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = _wait_before_next(exc, attempt, policy, _name(fn))
        await asyncio.sleep(delay)
        attempt += 1


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or EngineConfig.from_env().database_url)
    return cfg


class DatabaseNotReady(RuntimeError):
    """The engine database cannot serve this engine yet; the message says which command fixes it."""


def require_current(url: str | None = None) -> None:
    """Refuse to work on a database that is unreachable or not migrated to this engine's schema."""
    url = url or EngineConfig.from_env().database_url
    where = get_engine(url).url.render_as_string(hide_password=True)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    try:
        with get_engine(url).connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise DatabaseNotReady(f"the engine database at {where} cannot be reached ({exc.orig})") from exc
    if current != head:
        state = "is empty" if current is None else f"is at revision {current}, this engine needs {head}"
        raise DatabaseNotReady(f"the engine database at {where} {state}: run `ris db upgrade`")


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or EngineConfig.from_env().database_url
    get_engine(url)  # creates the SQLite folder
    command.upgrade(alembic_config(url), revision)


class BackupFailed(RuntimeError):
    """The backup could not be written; the message says why (no partial file is left)."""


def backup(url: str, destination: Path) -> int | None:
    """Copy the database `url` to `destination` while it is in use; the number of SQLite pages copied."""
    os.close(os.open(destination, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        if url.startswith("sqlite:///"):
            return _sqlite_backup(Path(url.removeprefix("sqlite:///")), destination)
        _pg_dump(url, destination)
        return None
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def _sqlite_backup(source: Path, destination: Path) -> int:
    # sqlite3's online backup copies a consistent snapshot page by page; writers keep working meanwhile
    src, dst = sqlite3.connect(source), sqlite3.connect(destination)
    with contextlib.closing(src), contextlib.closing(dst):
        src.backup(dst)
        return dst.execute("PRAGMA page_count").fetchone()[0]


def _pg_dump(url: str, destination: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupFailed("pg_dump is not installed: install the PostgreSQL client tools (server's version)")
    plain = sa.make_url(url).set(drivername="postgresql")
    env = {**os.environ, "PGPASSWORD": plain.password or ""}
    dsn = plain.set(password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        [pg_dump, "--format=custom", "--file", str(destination), "--dbname", dsn],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupFailed(f"pg_dump failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}")
