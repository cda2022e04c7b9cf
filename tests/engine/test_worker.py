"""Engine workers end to end, against a real Prefect server, the sandbox PFI and our ZAM listener:
deployments from prefect.yaml run in `ris worker` processes; a worker killed mid-run loses nothing and
sends nothing twice; eight lifecycles at once in one worker all produce valid PDF/A; a task whose block
was never saved refuses clearly and stores nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import signal
import subprocess
import sys

import pikepdf.pdfa
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from sqlmodel import func, select

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from deployments import WORK_POOL
from deployments import worker as engine_worker
from deployments.apply import apply_deployments, ensure_work_pool
from deployments.runs import start_lifecycle
from deployments.worker import RisWorker
from flows.report_lifecycle import report_lifecycle
from ris.store import blobs
from ris.store.db import session_scope
from ris.store.models import Delivery, DeliveryStatus, Document
from tests import factories
from tests.conftest import ROOT
from tests.documents.conftest import preflight_command
from tests.engine.conftest import all_acknowledged, hl7_statuses, until

pytestmark = pytest.mark.slow


def _validated(count: int) -> list[tuple[str, int]]:
    with session_scope() as session:
        bundles = [factories.validated_report(session) for _ in range(count)]
        return [(b.report.id, b.version.version) for b in bundles]


async def _final(*run_ids: str, timeout: float = 60):
    """The flow runs once each reached a final state (reported right after its last task)."""
    async with get_client() as client:
        for _ in range(int(timeout / 0.2)):
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(run_ids)))
            )
            if len(runs) == len(run_ids) and all(run.state and run.state.is_final() for run in runs):
                return runs
            await asyncio.sleep(0.2)
    pytest.fail(f"flow runs not final within {timeout} s: {[r.state for r in runs]}")


async def test_a_report_goes_through_a_worker_started_from_prefect_yaml(site, engine_env, start_worker):
    await ensure_work_pool(WORK_POOL)  # what the first worker of a site does
    deployed = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "--no-prompt",
            "deploy",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--all",
        ],
        cwd=ROOT,
        env=engine_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    start_worker("site-worker-1")
    [(report_id, version)] = _validated(1)

    run_id = await start_lifecycle(report_id, version)
    await all_acknowledged([report_id])

    [run] = await _final(run_id)
    async with get_client() as client:
        task_filter = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]))
        tasks = await client.read_task_runs(task_run_filter=task_filter)
    assert run.name == f"report-{report_id}-v{version}" and run.state.is_completed(), run.state
    assert {t.name.rsplit("-", 2)[0] for t in tasks} >= {
        "check-identity",
        "build-documents",
        "plan-deliveries",
    }
    assert len(site.documents) == 1 and site.duplicates == 0


async def test_a_worker_killed_mid_run_loses_nothing_and_sends_nothing_twice(site, start_worker):
    await apply_deployments(WORK_POOL)
    site.delay_s = 2.0  # the PFI answers slowly: the runs are mid-send when the worker dies
    doomed = start_worker("doomed-worker")
    versions = _validated(6)
    run_ids = [await start_lifecycle(report_id, version) for report_id, version in versions]
    await until(lambda: len(site.received) >= 1, 90, "the first message to reach the PFI")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    report_ids = [report_id for report_id, _ in versions]
    acknowledged_at_kill = [s for s in hl7_statuses(report_ids).values() if s is DeliveryStatus.acknowledged]

    start_worker("rescuer")
    await all_acknowledged(report_ids)

    assert len(acknowledged_at_kill) < len(versions), "the kill came too late to prove anything"
    with session_scope() as session:
        keys = dict(
            session.exec(
                select(Delivery.report_id, Delivery.idempotency_key).where(Delivery.channel == "hl7")
            ).all()
        )
        hl7_rows = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.channel == "hl7")
        ).one()
    assert hl7_rows == len(versions)  # one hl7 delivery per version, its key minted once
    assert set(site.documents) == {keys[report_id] for report_id in report_ids}  # each filed once
    assert {r.control_id for r in site.received} <= set(keys.values())  # any resend carried the same MSH-10
    runs = await _final(*run_ids)
    assert all(run.state.is_completed() for run in runs), [run.state for run in runs]
    async with get_client() as client:
        histories = [await client.read_flow_run_states(run.id) for run in runs]
    resumed = [h for h in histories if any("its worker stopped" in (st.message or "") for st in h)]
    assert resumed, "no run was rescheduled by the rescuer"  # the orphans were recovered, not re-created


async def test_a_version_whose_run_could_not_start_gets_it_from_the_running_worker(site, monkeypatch):
    """`ris report validate` keeps the version when its run cannot start (the API away, a 503 under load):
    a running worker starts that run on its own within CATCH_UP_S, not at its next start."""
    monkeypatch.setattr(engine_worker, "CATCH_UP_S", 1.0)
    monkeypatch.setattr(engine_worker, "CATCH_UP_AFTER", dt.timedelta(0))
    await apply_deployments(WORK_POOL)
    worker = RisWorker(WORK_POOL, name="catching-up-worker")
    serving = asyncio.create_task(worker.start(printer=lambda *_: None))
    try:
        await asyncio.wait_for(worker.ready.wait(), 120)
        versions = _validated(1)  # validated after the worker's start-up catch-up, its run never started
        await all_acknowledged([report_id for report_id, _ in versions], timeout=120)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert hl7_statuses([versions[0][0]]) == {versions[0][0]: DeliveryStatus.acknowledged}


async def test_the_periodic_catch_up_asks_once_for_a_version_whose_run_never_planned(site, monkeypatch):
    """A version whose run failed before planning stays undispatched: the running worker does not ask the
    API for its run again every CATCH_UP_S (an administrator retries that run)."""
    started: list[tuple[str, int]] = []

    async def start(report_id: str, version: int) -> str:
        started.append((report_id, version))
        return f"run-of-{report_id}"

    monkeypatch.setattr(engine_worker, "start_lifecycle", start)
    worker = RisWorker(WORK_POOL, name="catch-up-once-worker")
    [version] = _validated(1)
    before = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert f"run-of-{version[0]}" in await worker.catch_up(validated_before=before)
    assert await worker.catch_up(validated_before=before) == []  # the versions ensured are not asked again
    assert started.count(version) == 1


async def test_eight_lifecycles_at_once_in_one_worker_all_make_valid_pdfa(site, monkeypatch, tmp_path):
    monkeypatch.setenv("RIS_WORKER_LEASE_SECONDS", "4")
    await apply_deployments(WORK_POOL)
    # Eight at once: four times the renders the 2-core pool runs side by side, so they overlap.
    worker = RisWorker(WORK_POOL, limit=8, name="in-process-worker")
    serving = asyncio.create_task(worker.start(printer=lambda *_: None))
    try:
        await asyncio.wait_for(worker.ready.wait(), 120)
        versions = _validated(8)
        run_ids = [await start_lifecycle(report_id, version) for report_id, version in versions]
        await all_acknowledged([report_id for report_id, _ in versions], timeout=280)
        # The runs end after their deliveries (the report's state is published last): wait for them before
        # the worker stops, or it hands the last ones over to a next worker.
        runs = await _final(*run_ids, timeout=120)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert all(run.state.is_completed() for run in runs), [run.state for run in runs]
    with session_scope() as session:
        rows = session.exec(select(Document).where(Document.report_id.in_([r for r, _ in versions]))).all()
        pdfs = [blobs.get(session, row.pdf_sha256) for row in rows]
    assert len(pdfs) == 8
    assert all(pikepdf.pdfa.validate_written(io.BytesIO(pdf), "1b").passed for pdf in pdfs)
    paths = []
    for n, pdf in enumerate(pdfs):
        paths.append(tmp_path / f"report-{n}.pdf")
        paths[-1].write_bytes(pdf)
    commands = [preflight_command(path) for path in paths]
    if all(commands):  # PDFBox Preflight, when Java and its jars are installed (CI has them)
        results = [subprocess.run(command, capture_output=True, timeout=120) for command in commands]
        assert [r.returncode for r in results] == [0] * 8


async def test_a_task_whose_block_was_never_saved_refuses_clearly(prefect_server, db_url):
    async with get_client() as client:
        try:
            saved = await client.read_block_document_by_name(
                DEFAULT_NAME, SiteSettingsBlock.get_block_type_slug()
            )
        except Exception:  # never saved in this session
            saved = None
        if saved is not None:
            await client.delete_block_document(saved.id)
    [(report_id, version)] = _validated(1)
    state = await report_lifecycle(report_id, version, return_state=True)
    assert state.is_failed()
    assert "the RIS Site Settings block 'default' is not saved on this Prefect server" in state.message
    with session_scope() as session:
        assert session.exec(select(Document).where(Document.report_id == report_id)).all() == []
        assert session.exec(select(Delivery).where(Delivery.report_id == report_id)).all() == []
