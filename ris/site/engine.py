"""Where the engine keeps its state: read from the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ris"


def private_dir(path: Path) -> Path:
    """Create `path` (and its missing parents) readable by this user only; an existing folder is left as
    its owner set it."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    return path


class EngineConfigError(ValueError):
    """An engine environment variable holds a value the engine cannot use; the message names it and the
    rule."""


def _env_number(name: str, default: float, *, minimum: float, whole: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    kind = "a whole number" if whole else "a number"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise EngineConfigError(f"{name}={raw!r}: must be {kind} ≥ {minimum:g}") from None
    if not value >= minimum:  # also refuses nan
        raise EngineConfigError(f"{name}={raw!r}: must be {kind} ≥ {minimum:g}")
    return value


@dataclass(frozen=True)
class DatabaseRetry:
    """How a unit of work meets a transient database fault (deadlock, serialization failure, lost
    connection, SQLite busy): it runs again whole, in a fresh session, up to `attempts` times in all,
    waiting `first_delay_s` after the first failure, doubled each time up to `max_delay_s`, with jitter.
    The defaults ride out a few seconds of trouble; Prefect's task retries then cover about a minute."""

    attempts: int = 6  # RIS_DB_RETRY_ATTEMPTS (1: never run again)
    first_delay_s: float = 0.1  # RIS_DB_RETRY_DELAY_SECONDS
    max_delay_s: float = 3.0  # RIS_DB_RETRY_MAX_DELAY_SECONDS
    # RIS_SQLITE_BUSY_TIMEOUT_SECONDS: how long SQLite itself waits for a lock before `database is locked`
    sqlite_busy_timeout_s: float = 10.0
    # RIS_DB_RECORD_PATIENCE_SECONDS: how long a task that has sent keeps trying to record it; a task
    # retried after that sends again (same idempotency key, which the peer recognises)
    record_patience_s: float = 300.0

    @classmethod
    def from_env(cls) -> DatabaseRetry:
        return cls(
            attempts=int(_env_number("RIS_DB_RETRY_ATTEMPTS", cls.attempts, minimum=1, whole=True)),
            first_delay_s=_env_number("RIS_DB_RETRY_DELAY_SECONDS", cls.first_delay_s, minimum=0),
            max_delay_s=_env_number("RIS_DB_RETRY_MAX_DELAY_SECONDS", cls.max_delay_s, minimum=0),
            sqlite_busy_timeout_s=_env_number(
                "RIS_SQLITE_BUSY_TIMEOUT_SECONDS", cls.sqlite_busy_timeout_s, minimum=0
            ),
            record_patience_s=_env_number("RIS_DB_RECORD_PATIENCE_SECONDS", cls.record_patience_s, minimum=0),
        )


@dataclass(frozen=True)
class EngineConfig:
    """Process-level configuration. Site settings (facility, RGPD text, delays) live in
    `ris.site.settings`."""

    data_dir: Path
    database_url: str
    db_retry: DatabaseRetry = field(default_factory=DatabaseRetry)

    @classmethod
    def from_env(cls) -> EngineConfig:
        data_dir = Path(os.environ.get("RIS_DATA_DIR") or default_data_dir())
        url = os.environ.get("RIS_DATABASE_URL") or f"sqlite:///{data_dir / 'ris.db'}"
        return cls(data_dir=data_dir, database_url=url, db_retry=DatabaseRetry.from_env())


ORCHESTRATION_RETENTION_DAYS = 3


def orchestration_retention_days() -> int:
    """RIS_ORCHESTRATION_RETENTION_DAYS (3 by default, at least 1): how long the Prefect server keeps
    finished flow runs (their task runs, states, logs, artifacts) and events. The engine's database is
    the state of record; Prefect's holds orchestration state, which a site needs for days (runs to look
    at or retry from the UI), not for ever: kept for ever, it makes every report cost more than the last."""
    return int(
        _env_number("RIS_ORCHESTRATION_RETENTION_DAYS", ORCHESTRATION_RETENTION_DAYS, minimum=1, whole=True)
    )


def redis_url() -> str | None:
    """The Redis of Prefect's HA topology (RIS_REDIS_URL, e.g. redis://db-host:6379/0); None on a single
    box, where the Prefect server keeps that state in its own memory."""
    return os.environ.get("RIS_REDIS_URL") or None
