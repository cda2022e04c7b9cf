"""Database engine, sessions and schema migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import Session, create_engine

from ris.config import EngineConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; WAL + busy timeout let the CLI, the flows and the
    # receipt listeners share one file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


_engines: dict[str, sa.Engine] = {}


def get_engine(url: str | None = None) -> sa.Engine:
    """The engine of `url`, or of RIS_DATABASE_URL as it is now (read at each call); one per URL."""
    url = url or EngineConfig.from_env().database_url
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a database error that reaches a log or a Prefect state never quotes a value
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        _engines[url] = engine
    return engine


def clear_engines() -> None:
    """Close every pooled connection (tests switch databases; SQLite folds its WAL on the last close)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or EngineConfig.from_env().database_url)
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or EngineConfig.from_env().database_url
    get_engine(url)  # creates the SQLite folder
    command.upgrade(alembic_config(url), revision)
