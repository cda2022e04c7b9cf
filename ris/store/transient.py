"""Which database faults may pass when the same unit of work runs again: a deadlock, a serialization
failure, a lock not granted, a lost or refused connection, SQLite's `database is locked`. A unit of work is
one transaction, rolled back on any error, so running it again whole is safe; anything else (a constraint,
a rule, a bug) would fail the same way again and is never retried.

The drivers' own codes decide (psycopg's `sqlstate`, psycopg2's `pgcode`, sqlite3's `sqlite_errorcode`,
SQLAlchemy's `connection_invalidated`), never the wording of a message. Descriptions name the error's
class and code only: a statement's parameters never reach a log (engines hide them as well).
"""

from __future__ import annotations

import random
import sqlite3

import sqlalchemy as sa

# PostgreSQL SQLSTATEs: the transaction lost a race, or the server went away for a moment.
PG_TRANSIENT = frozenset(
    {
        "40P01",  # deadlock_detected
        "40001",  # serialization_failure
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57P01",  # admin_shutdown (pg_terminate_backend, a fast shutdown or restart)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (the server is starting or stopping)
    }
)
PG_TRANSIENT_CLASSES = ("08",)  # connection_exception
# SQLite primary result codes (sqlite3 reports the extended code; its low byte is the primary one).
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # `database is locked` once the busy timeout passed; `table is locked`


class TransientDatabaseError(RuntimeError):
    """A unit of work met a transient fault on every one of its attempts: nothing of it was stored, and
    running it again later may succeed (tasks are retried by Prefect; a command can be run again)."""

    def __init__(self, fault: str, attempts: int, words: str) -> None:
        """`fault`: the last fault's class and code (`describe`); `words`: the driver's first line."""
        super().__init__(
            f"the engine database stayed busy or unreachable over {attempts} attempts ({fault}: {words}); "
            "nothing was changed: run it again once the database answers"
        )
        self.fault, self.attempts, self.words = fault, attempts, words

    def __reduce__(self) -> tuple[type[TransientDatabaseError], tuple[str, int, str]]:
        return type(self), (self.fault, self.attempts, self.words)  # Prefect may pickle a task's failure

    @classmethod
    def after(cls, last: BaseException, attempts: int) -> TransientDatabaseError:
        return cls(describe(last), attempts, _first_line(last))


def _first_line(exc: BaseException) -> str:
    """The driver's own words, first line only (a PostgreSQL DETAIL line may quote values)."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    return (str(orig).strip().splitlines() or ["no message"])[0]


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
    return code & 0xFF if code is not None else None


def _failed_to_connect(exc: sa.exc.DBAPIError) -> bool:
    """PostgreSQL refused or dropped a new connection (server restarting, network away): psycopg gives
    such a failure no SQLSTATE, and SQLAlchemy raises it before any statement ran."""
    return exc.statement is None and _sqlstate(exc.orig) is None and hasattr(exc.orig, "sqlstate")


def is_transient(exc: BaseException | None) -> bool:
    """True when running the same unit of work again, in a fresh session, may succeed."""
    if isinstance(exc, TransientDatabaseError | sa.exc.DisconnectionError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc.orig)
    if state is not None:
        return state in PG_TRANSIENT or state.startswith(PG_TRANSIENT_CLASSES)
    if _sqlite_code(exc.orig) in (SQLITE_BUSY, SQLITE_LOCKED):
        return True
    return isinstance(exc, sa.exc.OperationalError) and _failed_to_connect(exc)


def describe(exc: BaseException) -> str:
    """The error's class and code, e.g. `DeadlockDetected, SQLSTATE 40P01` (never a value)."""
    if isinstance(exc, TransientDatabaseError):
        return exc.fault
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    parts = [type(orig).__name__]
    if state := _sqlstate(orig):
        parts.append(f"SQLSTATE {state}")
    elif name := getattr(orig, "sqlite_errorname", None):
        parts.append(name)
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        parts.append("connection lost")
    return ", ".join(parts)


def backoff_s(attempt: int, first_s: float, max_s: float) -> float:
    """The wait after failed attempt `attempt` (1, 2...): doubled each time up to `max_s`, with jitter
    (half to all of it) so that the two sides of a deadlock do not meet again at the same instant."""
    ceiling = min(max_s, first_s * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)
