"""A transient database fault inside a report's run is retried, never the end of the run: a task whose
unit of work still fails after its own attempts is retried by Prefect, and a send the peer took is
recorded once the database answers again, never sent a second time. The faults are real: another writer
holds SQLite's write lock past the busy timeout, on the engine database the run uses."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterName,
)
from prefect.client.schemas.objects import TaskRun
from prefect.logging.handlers import APILogHandler
from prefect.states import Failed
from sqlmodel import Session, select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from deployments.worker import RisWorker
from flows.report_lifecycle import report_lifecycle
from ris.store import claims, db
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.transient import TransientDatabaseError
from sandbox.pfi import PfiSandbox
from tasks.deliveries import plan_deliveries
from tasks.dmp import send_dmp
from tasks.documents import build_documents
from tasks.hl7 import publish_hl7
from tasks.identity import check_identity
from tasks.report_state import publish_report_state
from tests import factories


@pytest.fixture
def short_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit gives up after two tries of a fifth of a second: the task level takes over at once."""
    monkeypatch.setenv("RIS_DB_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("RIS_DB_RETRY_DELAY_SECONDS", "0.05")
    monkeypatch.setenv("RIS_DB_RETRY_MAX_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("RIS_SQLITE_BUSY_TIMEOUT_SECONDS", "0.2")


class WriteLock:
    """Another writer holding the engine database's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, url: str) -> None:
        self.connection = sqlite3.connect(Path(url.removeprefix("sqlite:///")), isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.rollback()
        self.connection.close()


# --- the retry conditions ---------------------------------------------------------------------------------


def _deadlock() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("UPDATE delivery SET ...", None, psycopg.errors.DeadlockDetected())


@pytest.mark.parametrize(
    "task", [check_identity, build_documents, plan_deliveries, publish_hl7, send_dmp, publish_report_state]
)
def test_every_task_of_the_run_retries_a_transient_database_fault_and_nothing_else(task):
    retry = task.retry_condition_fn
    assert task.retries >= 4
    exhausted = TransientDatabaseError.after(_deadlock(), 6)
    assert retry(task, None, Failed(data=exhausted)) is True
    assert retry(task, None, Failed(data=_deadlock())) is True
    assert retry(task, None, Failed(data=ValueError("a rule"))) is False
    integrity = sa.exc.IntegrityError("INSERT", None, Exception("duplicate key"))
    assert retry(task, None, Failed(data=integrity)) is False


# --- the worker's claims ----------------------------------------------------------------------------------


async def test_a_claim_release_the_database_refused_is_released_with_the_next_lease_renewal(
    db_url: str, short_patience
):
    worker = RisWorker(work_pool_name="ris", name="w-release")
    await db.unit_of_work(claims.register_worker, worker.engine_id, worker.name, "host", 1)
    assert await db.unit_of_work(claims.acquire, "report:CR-1:v1", worker.engine_id, "run-1") is None
    lock = WriteLock(db_url)
    try:
        await worker._release("report:CR-1:v1", "run-1")  # the database stays locked past the unit's tries
    finally:
        lock.release()
    assert await db.unit_of_work(claims.holder, "report:CR-1:v1") is not None  # still held: the lease lives
    await worker._renew_lease()
    assert await db.unit_of_work(claims.holder, "report:CR-1:v1") is None
    assert not worker._unreleased


# --- a report's run -----------------------------------------------------------------------------------------


@pytest.fixture
async def pfi(prefect_server, db_url) -> AsyncIterator[PfiSandbox]:
    """The sandbox PFI, without ZAM receipts (our listener would write to the database the tests lock)."""
    async with PfiSandbox(matrix_check=False) as peer:
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(host="127.0.0.1", port=peer.port, ack_timeout_s=10).asave(
            DEFAULT_NAME, overwrite=True
        )
        yield peer


def _validated() -> tuple[str, int]:
    with db.session_scope() as session:
        bundle = factories.validated_report(session)
        return bundle.report.id, bundle.version.version


def _hl7(report_id: str) -> Delivery | None:
    """Read without a unit of work: a plain WAL reader, which another writer's lock never blocks."""
    with Session(db.get_engine()) as session:
        stmt = select(Delivery).where(Delivery.report_id == report_id, Delivery.channel == Channel.hl7)
        return session.exec(stmt).first()


async def _until(predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await asyncio.to_thread(predicate):
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def _task_run(name: str) -> TaskRun | None:
    async with get_client() as client:
        runs = await client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name])))
    return runs[0] if runs else None


async def _run_logs(run_name: str) -> list[str]:
    await APILogHandler.aflush()
    async with get_client() as client:
        [run] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name]))
        )
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    return [entry.message for entry in logs]


@pytest.mark.slow
async def test_a_task_whose_first_try_meets_a_locked_database_is_retried_and_the_run_completes(
    pfi: PfiSandbox, db_url: str, short_patience
):
    report_id, version = _validated()
    lock = WriteLock(db_url)  # the run's first unit of work (the identity check) will find it held
    run = asyncio.create_task(report_lifecycle(report_id, version, return_state=True))
    try:
        name = f"check-identity-{report_id}-v{version}"
        async with asyncio.timeout(60):
            while (task_run := await _task_run(name)) is None or task_run.state_name != "AwaitingRetry":
                await asyncio.sleep(0.05)
    finally:
        lock.release()  # the database answers again before Prefect's retry
    state = await run
    assert state.is_completed(), state
    assert (await state.result())["hl7"] == "acknowledged"
    identity = await _task_run(name)
    assert identity.state_name == "Completed" and identity.run_count == 2
    assert _hl7(report_id).status is DeliveryStatus.acknowledged
    assert len(pfi.documents) == 1 and pfi.duplicates == 0


@pytest.mark.slow
async def test_a_send_the_peer_took_is_recorded_once_the_database_answers_and_never_sent_again(
    pfi: PfiSandbox, db_url: str, short_patience
):
    report_id, version = _validated()
    pfi.delay_s = 1.5  # the ACK comes back while another writer holds the database
    run = asyncio.create_task(report_lifecycle(report_id, version, return_state=True))

    def sending() -> bool:  # its attempt counted, committed: the message is on its way to the PFI
        row = _hl7(report_id)
        return row is not None and row.attempts == 1

    await _until(sending, "the hl7 send to start")
    lock = WriteLock(db_url)
    try:
        async with asyncio.timeout(60):  # until the task has met the lock while recording the ACK
            while not any(
                "sent, not recorded yet" in line for line in await _run_logs(f"report-{report_id}-v1")
            ):
                await asyncio.sleep(0.2)
    finally:
        lock.release()
    state = await run
    assert state.is_completed(), state
    assert (await state.result())["hl7"] == "acknowledged"
    publish = await _task_run(f"publish-hl7-{report_id}-v{version}-initial")
    assert publish.state_name == "Completed" and publish.run_count == 1  # no task retry: no second send
    row = _hl7(report_id)
    assert row.status is DeliveryStatus.acknowledged and row.attempts == 1
    assert len(pfi.documents) == 1 and len(pfi.received) == 1 and pfi.duplicates == 0
