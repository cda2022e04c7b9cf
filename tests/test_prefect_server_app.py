"""The single box's Prefect server on SQLite: a transaction that read, then writes after another writer
committed, waits for the write lock instead of failing with "database is locked" (the 503 that, past the
client's resends, failed report runs under load). Prefect's own configuration on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database import configurations
from sqlalchemy.exc import OperationalError

from cli import prefect_server_app


async def _read_then_write_across_another_writer(database: Path) -> list[int]:
    """Transaction A reads, B (started after) inserts, then A inserts: the race Prefect's DEFERRED loses."""
    config = configurations.AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{database}")
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    first, second = await config.session(engine), await config.session(engine)
    try:
        async with config.begin_transaction(first):
            await first.execute(sa.text("SELECT count(*) FROM t"))

            async def other_writer() -> None:
                async with config.begin_transaction(second):
                    await second.execute(sa.text("INSERT INTO t VALUES (2)"))

            writer = asyncio.create_task(other_writer())
            await asyncio.sleep(0.5)  # B has begun, and committed unless A holds the write lock
            await first.execute(sa.text("INSERT INTO t VALUES (1)"))
        await writer
        async with engine.connect() as connection:
            return [n for (n,) in await connection.execute(sa.text("SELECT n FROM t ORDER BY rowid"))]
    finally:
        await first.close()
        await second.close()
        await engine.dispose()
        configurations.ENGINES.clear()


async def test_prefects_own_deferred_transactions_lose_the_race(tmp_path: Path):
    with pytest.raises(OperationalError, match="database is locked"):
        await _read_then_write_across_another_writer(tmp_path / "deferred.db")


async def test_the_engines_server_begins_immediate_and_the_writer_waits(tmp_path: Path, monkeypatch):
    # Set to itself: monkeypatch puts Prefect's own method back after this test, whatever the patch does.
    monkeypatch.setattr(
        configurations.AioSqliteConfiguration,
        "begin_transaction",
        configurations.AioSqliteConfiguration.begin_transaction,
    )
    prefect_server_app.begin_sqlite_transactions_immediate()
    assert await _read_then_write_across_another_writer(tmp_path / "immediate.db") == [1, 2]
