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
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.exceptions import ObjectNotFound, SignatureMismatchError
from prefect.flow_engine import run_flow
from prefect.flows import Flow
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_WORKER_QUERY_SECONDS,
    temporary_settings,
)
from prefect.states import AwaitingRetry, Failed, Scheduled
from prefect.workers.base import BaseJobConfiguration, BaseWorker, BaseWorkerResult

from deployments import LIFECYCLE_DEPLOYMENT, WORK_POOL
from deployments.entrypoints import load_flow
from deployments.runs import start_lifecycle
from ris import process_pool
from ris.site.engine import orchestration_retention_days
from ris.store import audit, claims
from ris.store.db import unit_of_work
from ris.store.models import utcnow
from ris.store.reports import undispatched_versions

log = logging.getLogger("ris.worker")

QUERY_SECONDS = 1.0  # how soon a new run is picked up (validation → start of its run)
CLAIM_RETRY_S = 5.0  # a run whose version is busy elsewhere is tried again this much later
DEFAULT_LIMIT = 16  # flow runs in flight at once in one worker
AUDIT_SEAL_S = 5.0  # how soon an audit entry joins the hash chain once its transaction has ended
# A version whose lifecycle run could not be started at validation (the API away, or answering 503 under
# load) gets it within this much, not at the next worker start; younger versions may just not have planned.
CATCH_UP_S = 300.0
CATCH_UP_AFTER = dt.timedelta(minutes=2)


def recoverable_runs_filters() -> tuple[FlowRunFilter, FlowRunFilter]:
    """The runs the orphan sweep looks at: Pending or Running, and Crashed before they ever started. Not
    every Crashed run: those that crashed while running stay in the server's database until its retention
    removes them, and the sweep, every half lease, must not read them all again."""

    def in_state(*types: StateType) -> FlowRunFilterState:
        return FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types)))

    live = FlowRunFilter(state=in_state(StateType.PENDING, StateType.RUNNING))
    never_ran = FlowRunFilter(
        state=in_state(StateType.CRASHED), start_time=FlowRunFilterStartTime(is_null_=True)
    )
    return live, never_ran


class RisJobConfiguration(BaseJobConfiguration):
    """A flow run's configuration in this worker, where it runs in the worker's own process: there is no
    child process to configure, so neither the pool's template nor the deployment's job variables apply.
    Prefect's base configuration renders every Prefect setting into environment variables for such a
    process, for every run (about an eighth of this worker's CPU); here a run keeps only what names it in
    the worker's events: its flow run, flow and deployment, read once per deployment and process."""

    _named: ClassVar[dict[UUID, tuple[Any, Any]]] = {}  # deployment id -> (deployment, flow)

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: Any,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: Any = None,
    ) -> RisJobConfiguration:
        if flow_run.deployment_id is not None and flow_run.deployment_id not in cls._named:
            cls._named[flow_run.deployment_id] = (
                deployment or await client.read_deployment(flow_run.deployment_id),
                await client.read_flow(flow_run.flow_id),
            )
        deployment, flow = cls._named.get(flow_run.deployment_id, (None, None))
        configuration = cls()
        configuration.prepare_for_flow_run(flow_run, deployment, flow, work_pool, worker_name, worker_id)
        return configuration

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: Any = None,
        flow: Any = None,
        work_pool: Any = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        self._related_objects = {"deployment": deployment, "flow": flow, "flow-run": flow_run}


class RisWorkerResult(BaseWorkerResult):
    """Outcome of one flow run taken by the worker (its state is on the flow run itself)."""


class RisWorker(BaseWorker[RisJobConfiguration, Any, RisWorkerResult]):
    type = "ris"
    job_configuration = RisJobConfiguration
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
        self._unreleased: set[tuple[str, str]] = set()  # (subject, flow run id) claims to release again
        # Versions this worker ensured a run for: the periodic catch-up does not ask the API again for one
        # whose run failed before planning (its key returns that failed run; an administrator retries it).
        self._ensured: set[tuple[str, int]] = set()
        self._flows_by_deployment: dict[UUID, Flow] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._clients = contextlib.ExitStack()
        self._sync_client: SyncPrefectClient | None = None  # for what Prefect's engine asks synchronously
        self.caught_up: list[str] = []  # lifecycle runs started at setup for versions left undispatched
        self.ready = asyncio.Event()  # set once the lease, the process pool and the catch-up are done

    async def start(self, *args: Any, **kwargs: Any) -> None:
        # No flow-run heartbeats: a thread per run and an event every few minutes, for a detection of dead
        # runs the engine does itself, by its workers' leases (recover_orphaned_runs).
        updates = {PREFECT_WORKER_QUERY_SECONDS: self.query_seconds, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        with temporary_settings(updates=updates):
            await super().start(*args, **kwargs)

    async def setup(self) -> None:
        await super().setup()
        self._sync_client = self._clients.enter_context(get_client(sync_client=True))
        await unit_of_work(claims.register_worker, self.engine_id, self.name, self.host, os.getpid())
        await asyncio.to_thread(process_pool.shared().start)  # pre-started: no report pays for it
        lease_s = claims.lease().total_seconds()
        self._loops = [
            asyncio.create_task(self._every(lease_s / 3, self._renew_lease)),
            asyncio.create_task(self._every(lease_s / 2, self.recover_orphaned_runs)),
            asyncio.create_task(self._every(AUDIT_SEAL_S, self._seal_audit)),
            asyncio.create_task(self._every(CATCH_UP_S, self._catch_up_late, first_after=CATCH_UP_S)),
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
        self._clients.close()
        await super().teardown(*exc_info)

    async def _every(self, seconds: float, job: Any, first_after: float = 0.0) -> None:
        await asyncio.sleep(first_after)
        while True:
            try:
                await job()
            except Exception:  # a database or API hiccup: the next round tries again
                log.warning("worker %s: %s failed", self.name, job.__name__, exc_info=True)
            await asyncio.sleep(seconds)

    async def _renew_lease(self) -> None:
        if not await unit_of_work(claims.renew_lease, self.engine_id):
            log.error("worker %s is no longer registered as running: its claims may be taken over", self.name)
        for subject, run_id in list(self._unreleased):
            self._unreleased.discard((subject, run_id))
            await self._release(subject, run_id)

    async def _release(self, subject: str, run_id: str) -> None:
        """End a claim of this worker. Its lease keeps its claims alive while it lives, so a release the
        database refused even after the unit's retries (it stayed away) is tried again with each lease
        renewal rather than left held: only a stopped or silent worker's claims free themselves."""
        try:
            await unit_of_work(claims.release, subject, self.engine_id, run_id)
        except Exception as exc:
            self._unreleased.add((subject, run_id))
            log.warning(
                "worker %s: claim on %s not released yet (%s)", self.name, subject, type(exc).__name__
            )

    async def _seal_audit(self) -> None:
        await unit_of_work(audit.seal)  # None when another worker's sealer has the chain this round

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
        configuration: RisJobConfiguration,
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
            with self._shared_clients():
                await run_flow(flow, flow_run=flow_run, return_type="state")
        except SignatureMismatchError as exc:  # parameters the flow does not take (a run made through the
            # API): it never starts, and it ends Failed rather than being submitted again for ever
            await self.client.set_flow_run_state(flow_run.id, Failed(message=str(exc)), force=True)
        except (anyio.get_cancelled_exc_class(), KeyboardInterrupt, SystemExit):
            with anyio.CancelScope(shield=True):  # the worker stops: the next worker resumes the run
                await self._reschedule(flow_run.id, f"worker {self.name!r} stopped during the run")
            raise
        finally:
            self._in_flight.discard(flow_run.id)
            with anyio.CancelScope(shield=True):
                await self._release(subject, run_id)
        return RisWorkerResult(identifier=run_id, status_code=0)

    @contextlib.contextmanager
    def _shared_clients(self) -> Iterator[None]:
        """The worker's own API clients as those of a flow run and its task runs. Without them every run
        builds an async client, and twice a sync one to ask where results would be stored, each with its
        TLS context and connection pool (about 30 ms of CPU each), then drops them."""
        with (
            AsyncClientContext.model_construct(client=self.client),
            SyncClientContext.model_construct(client=self._sync_client),
        ):
            yield

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
        recovered = []
        for run in await self._recoverable_runs():
            if run.id in self._in_flight or run.state is None or run.state.timestamp > cutoff:
                continue  # ours, or too recent to tell (its worker may be taking its claim right now)
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
                await self._release(subject, str(run.id))
        return recovered

    async def _recoverable_runs(self) -> list[FlowRun]:
        pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[self._work_pool_name]))
        return [
            run
            for runs_filter in recoverable_runs_filters()
            for run in await self.client.read_flow_runs(flow_run_filter=runs_filter, work_pool_filter=pool)
        ]

    async def catch_up(self, validated_before: dt.datetime | None = None) -> list[str]:
        """Versions validated while no engine ran get their lifecycle run (one per version at most, as long
        as the orchestration keeps its run and so its idempotency key: the retention)."""
        kept_since = utcnow() - dt.timedelta(days=orchestration_retention_days())
        listed = await unit_of_work(undispatched_versions, kept_since, validated_before)
        pending = [version for version in listed if version not in self._ensured]
        try:
            started = [await start_lifecycle(report_id, version) for report_id, version in pending]
            self._ensured.update(pending)
            return started
        except ObjectNotFound:
            log.warning("%s is not deployed yet: %s versions wait for it", LIFECYCLE_DEPLOYMENT, len(pending))
            return []

    async def _catch_up_late(self) -> None:
        """While the worker runs: a version validated when its run could not start is not left waiting for a
        restart or an administrator (starting a run already there is a no-op: its idempotency key)."""
        if ensured := await self.catch_up(validated_before=utcnow() - CATCH_UP_AFTER):
            log.info("worker %s: lifecycle runs ensured for %s versions", self.name, len(ensured))
