"""The engine's worker: it runs the flow runs of its work pool inside its own long-lived process.

Prefect's process worker and runner start a new Python interpreter for every flow run (about 4 CPU-s of
imports each). This worker, a `prefect.workers.base.BaseWorker`, imports the engine once and runs each
flow run it takes from the pool in its event loop through `prefect.flow_engine`: still one deployment
flow run per report version, with its task runs, retries and logs in the UI, so Retry in the UI and the
retry deployment keep working. CPU-bound rendering goes to the process pool it owns (ris.process_pool).

What it adds on top of Prefect, in the engine's database (ris.store.claims):
- a lease, renewed while the worker lives;
- a claim per report version before a run starts: a run whose version is claimed by a live run elsewhere
  waits, rescheduled (AwaitingClaim), so two workers never run the same version at once;
- recovery: a run left Pending or Running by a worker whose lease ran out (killed, machine lost), or
  that crashed before it ran, is rescheduled (AwaitingRetry) and resumed by a live worker; its tasks
  find what was already done in the store, and every send carries the idempotency key minted once, so
  nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.flow_engine import run_flow
from prefect.flows import Flow
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings
from prefect.states import AwaitingRetry, Scheduled
from prefect.workers.base import BaseJobConfiguration, BaseWorker, BaseWorkerResult

from deployments import LIFECYCLE_DEPLOYMENT, WORK_POOL
from deployments.entrypoints import load_flow
from deployments.runs import start_lifecycle
from ris import process_pool
from ris.store import claims
from ris.store.db import unit_of_work
from ris.store.models import utcnow
from ris.store.reports import undispatched_versions

log = logging.getLogger("ris.worker")

QUERY_SECONDS = 1.0  # how soon a new run is picked up (validation → start of its run)
CLAIM_RETRY_S = 5.0  # a run whose version is busy elsewhere is tried again this much later
DEFAULT_LIMIT = 16  # flow runs in flight at once in one worker


class RisWorkerResult(BaseWorkerResult):
    """Outcome of one flow run taken by the worker (its state is on the flow run itself)."""


class RisWorker(BaseWorker[BaseJobConfiguration, Any, RisWorkerResult]):
    type = "ris"
    job_configuration = BaseJobConfiguration
    _description = (
        "Runs the RIS engine's flow runs inside this long-lived process (imported once, rendering in a "
        "process pool), with a claim per report version and recovery of the runs of a worker that died."
    )
    _documentation_url = "https://docs.prefect.io/v3/concepts/workers"

    def __init__(
        self,
        work_pool_name: str = WORK_POOL,
        *,
        limit: int | None = DEFAULT_LIMIT,
        query_seconds: float = QUERY_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(work_pool_name=work_pool_name, limit=limit, **kwargs)
        self.engine_id = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.query_seconds = query_seconds
        self._in_flight: set[UUID] = set()
        self._flows_by_deployment: dict[UUID, Flow] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.caught_up: list[str] = []  # lifecycle runs started at setup for versions left undispatched
        self.ready = asyncio.Event()  # set once the lease, the process pool and the catch-up are done

    async def start(self, *args: Any, **kwargs: Any) -> None:
        with temporary_settings(updates={PREFECT_WORKER_QUERY_SECONDS: self.query_seconds}):
            await super().start(*args, **kwargs)

    async def setup(self) -> None:
        await super().setup()
        await unit_of_work(claims.register_worker, self.engine_id, self.name, self.host, os.getpid())
        await asyncio.to_thread(process_pool.shared().start)  # pre-started: no report pays for it
        lease_s = claims.lease().total_seconds()
        self._loops = [
            asyncio.create_task(self._every(lease_s / 3, self._renew_lease)),
            asyncio.create_task(self._every(lease_s / 2, self.recover_orphaned_runs)),
        ]
        self.caught_up = await self.catch_up()
        self.ready.set()

    async def teardown(self, *exc_info: Any) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        with anyio.CancelScope(shield=True):
            await unit_of_work(claims.stop_worker, self.engine_id)
            await asyncio.to_thread(process_pool.shutdown_shared)
        await super().teardown(*exc_info)

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            try:
                await job()
            except Exception:  # a database or API hiccup: the next round tries again
                log.warning("worker %s: %s failed", self.name, job.__name__, exc_info=True)
            await asyncio.sleep(seconds)

    async def _renew_lease(self) -> None:
        if not await unit_of_work(claims.renew_lease, self.engine_id):
            log.error("worker %s is no longer registered as running: its claims may be taken over", self.name)

    async def _flow_of(self, flow_run: FlowRun) -> Flow:
        if flow_run.deployment_id is None:
            raise LookupError(f"flow run {flow_run.id} has no deployment: nothing tells which flow to run")
        flow = self._flows_by_deployment.get(flow_run.deployment_id)
        if flow is None:
            deployment = await self.client.read_deployment(flow_run.deployment_id)
            flow = load_flow(deployment.entrypoint or "")
            self._flows_by_deployment[flow_run.deployment_id] = flow
        return flow

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> RisWorkerResult:
        flow = await self._flow_of(flow_run)
        subject = claims.subject_for(flow_run.parameters, flow.name)
        run_id = str(flow_run.id)
        holder = await unit_of_work(claims.acquire, subject, self.engine_id, run_id)
        if task_status is not None:
            task_status.started(f"{self.host}:{os.getpid()}")
        if holder is not None:
            await self._defer(flow_run, holder)
            return RisWorkerResult(identifier=run_id, status_code=0)
        self._in_flight.add(flow_run.id)
        try:
            await run_flow(flow, flow_run=flow_run, return_type="state")
        except (anyio.get_cancelled_exc_class(), KeyboardInterrupt, SystemExit):
            with anyio.CancelScope(shield=True):  # the worker stops: the next worker resumes the run
                await self._reschedule(flow_run.id, f"worker {self.name!r} stopped during the run")
            raise
        finally:
            self._in_flight.discard(flow_run.id)
            with anyio.CancelScope(shield=True):
                await unit_of_work(claims.release, subject, self.engine_id, run_id)
        return RisWorkerResult(identifier=run_id, status_code=0)

    async def _defer(self, flow_run: FlowRun, holder: claims.Holder) -> None:
        later = utcnow() + dt.timedelta(seconds=CLAIM_RETRY_S)
        state = Scheduled(scheduled_time=later, name="AwaitingClaim", message=f"busy: {holder.describe()}")
        await self.client.set_flow_run_state(flow_run.id, state, force=True)

    async def _reschedule(self, flow_run_id: UUID, why: str) -> None:
        state = AwaitingRetry(message=f"{why}; resumed by the next worker")
        await self.client.set_flow_run_state(flow_run_id, state, force=True)

    async def recover_orphaned_runs(self) -> list[UUID]:
        """Reschedule the runs of this pool that no live worker will finish; returns their ids:
        - Pending or Running, left by a worker whose lease ran out (killed, machine lost);
        - Crashed before they ever ran (a worker could not submit them, e.g. the API was unavailable).
        A run that crashed while running is left to an operator (Retry in the UI). Several workers may
        sweep at once: the recovery claim lets one act per run, on a run still as it was listed."""
        cutoff = utcnow() - claims.lease()
        states = [StateType.PENDING, StateType.RUNNING, StateType.CRASHED]
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self._work_pool_name])),
        )
        recovered = []
        for run in runs:
            if run.id in self._in_flight or run.state is None or run.state.timestamp > cutoff:
                continue  # ours, or too recent to tell (its worker may be taking its claim right now)
            if run.state.is_crashed() and run.run_count > 0:
                continue
            flow = await self._flow_of(run)
            subject = claims.subject_for(run.parameters, flow.name)
            if await unit_of_work(claims.acquire, subject, self.engine_id, str(run.id), purpose="recovery"):
                continue  # a live run holds the version: it is not orphaned, or not yet
            try:
                if (await self.client.read_flow_run(run.id)).state_id != run.state_id:
                    continue  # it moved on since it was listed
                why = "it crashed before it ran" if run.state.is_crashed() else "its worker stopped"
                await self._reschedule(run.id, why)
                log.warning("flow run %s (%s): %s, rescheduled", run.id, run.name, why)
                recovered.append(run.id)
            finally:
                await unit_of_work(claims.release, subject, self.engine_id, str(run.id))
        return recovered

    async def catch_up(self) -> list[str]:
        """Versions validated while no engine ran get their lifecycle run (one per version at most)."""
        pending = await unit_of_work(undispatched_versions)
        try:
            return [await start_lifecycle(report_id, version) for report_id, version in pending]
        except ObjectNotFound:
            log.warning("%s is not deployed yet: %s versions wait for it", LIFECYCLE_DEPLOYMENT, len(pending))
            return []
