"""A running engine worker seals the audit trail on its own, every few seconds beside its lease renewal:
entries written while it runs join the hash chain without anyone running `ris audit seal`."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import Session

from deployments import WORK_POOL
from deployments.worker import AUDIT_SEAL_S, RisWorker
from ris.store import audit, db
from tests.engine.conftest import until

pytestmark = pytest.mark.slow


def write_entries(n: int) -> None:
    with db.session_scope() as s:
        for i in range(n):
            audit.record(s, actor="clerk-1", action="test.entry", object_type="patient", object_id=i)


def chain(url: str) -> audit.Verification:
    with Session(db.get_engine(url)) as s:
        return audit.verify(s)


async def test_a_running_worker_seals_what_is_written(prefect_server, db_url):
    write_entries(3)  # written before the worker started
    worker = RisWorker(WORK_POOL, name="sealing-worker")
    serving = asyncio.create_task(worker.start(printer=lambda *_: None))
    try:
        await asyncio.wait_for(worker.ready.wait(), 120)
        await until(lambda: chain(db_url).entries == 3, 4 * AUDIT_SEAL_S, "the worker's first seal")
        write_entries(2)  # written while it runs
        await until(lambda: chain(db_url).entries == 5, 4 * AUDIT_SEAL_S, "the worker's next seal")
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    sealed = chain(db_url)
    assert (sealed.awaiting, sealed.problems) == (0, [])
