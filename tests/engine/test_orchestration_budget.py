"""What one report costs the Prefect server, kept under a budget: one version through the lifecycle on the
PFI route, in an engine worker on the test server, against the sandbox PFI. Counted: the API requests
the worker, its flow run and the run's start make (the pool's polls and heartbeats aside: they cost per
second, not per report), the events written about the run and the report, the run's states and log
lines, and its task runs. Adding a task run or a chatty call to every report makes it fail, saying what
grew."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventOccurredFilter
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from sqlmodel import select

from deployments import WORK_POOL
from deployments.apply import apply_deployments
from deployments.runs import start_lifecycle
from deployments.worker import RisWorker
from ris.store.db import session_scope
from ris.store.models import Delivery, utcnow
from tests import factories
from tests.engine.conftest import all_acknowledged

pytestmark = pytest.mark.slow

# Not counted as requests: the worker asking its pool for runs and saying it is alive (they cost per second,
# not per report), and the batches of log lines (their number depends on timing; the lines are counted).
NOT_PER_REPORT = re.compile(r"/work_pools/[^/]+/(get_scheduled_flow_runs|workers/heartbeat)$|^/logs/$")
BUSY = (429, 503)  # answered "come back later" (SQLite's lost write races): the client sends it again
UUID_IN_PATH = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_observer = contextvars.ContextVar("observer", default=False)  # the test's own reads are not counted
# One report on the PFI route (qualified identity, one copy), as measured, with a small margin where timing
# may add a little: a task run more costs 3 events, 3 states and a log line; a request more, a request.
# (Before: 26 requests, 33 events besides the outcomes, 7 task runs, 21 task-run states, 12 log lines.)
BUDGET = {
    "API requests": 21,  # 19 measured
    "events": 28,  # 26 measured, besides the ris.delivery.* outcomes (one per delivery outcome at most)
    "task runs": 5,  # identity, documents, planning, the PFI message, the report's state
    "task-run states": 15,
    "flow-run states": 5,
    "log lines": 11,  # 10 measured
}
OUTCOME = "ris.delivery."


@contextlib.contextmanager
def counting_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """The HTTP requests to the Prefect API, as `METHOD /path` with ids replaced by `{id}`."""
    seen: Counter[str] = Counter()
    send, send_sync = httpx.AsyncClient.send, httpx.Client.send

    def count(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        path = UUID_IN_PATH.sub("{id}", request.url.path.removeprefix("/api"))
        if not _observer.get() and not NOT_PER_REPORT.search(path) and response.status_code not in BUSY:
            seen[f"{request.method} {path}"] += 1
        return response

    async def counted(self: httpx.AsyncClient, request: httpx.Request, *args, **kwargs) -> httpx.Response:
        return count(request, await send(self, request, *args, **kwargs))

    def counted_sync(self: httpx.Client, request: httpx.Request, *args, **kwargs) -> httpx.Response:
        return count(request, send_sync(self, request, *args, **kwargs))

    monkeypatch.setattr(httpx.AsyncClient, "send", counted)
    monkeypatch.setattr(httpx.Client, "send", counted_sync)
    yield seen
    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    monkeypatch.setattr(httpx.Client, "send", send_sync)


async def _unobserved(coroutine):
    """Run the test's own reads of the API in a task of their own, not counted."""

    async def run():
        _observer.set(True)
        return await coroutine

    return await asyncio.create_task(run())


async def _final_run(run_id: str, timeout: float = 60):
    async with get_client() as client:
        async with asyncio.timeout(timeout):
            while True:
                [run] = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
                )
                if run.state and run.state.is_final():
                    return run
                await asyncio.sleep(0.2)


async def _written(run_id: str, report_id: str, since) -> dict[str, Counter[str]]:
    """What the server keeps about the run and the report, once its writers flushed."""
    await APILogWorker.drain_all(timeout=10)
    await EventsWorker.drain_all(timeout=10)
    about = EventAnyResourceFilter(id=[f"prefect.flow-run.{run_id}", f"ris.report.{report_id}"])
    async with get_client() as client:
        totals: list[int] = []
        # The server persists events in batches (every few seconds): until their number stops growing.
        while len(totals) < 8 or len(set(totals[-8:])) > 1:
            await asyncio.sleep(1)
            page = await client.read_events(
                EventFilter(occurred=EventOccurredFilter(since=since), any_resource=about), limit=50
            )
            totals.append(page.total)
        events = list(page.events)
        while page.next_page:
            page = await client.read_events_page(page.next_page)
            events.extend(page.events)
        task_runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run_id]))
        )
        task_states: Counter[str] = Counter()
        for task_run in task_runs:
            for state in await client.read_task_run_states(task_run.id):
                task_states[f"{task_run.task_key.rsplit('-', 1)[0]}:{state.name}"] += 1
        flow_states = Counter(s.name for s in await client.read_flow_run_states(run_id))
        logs = Counter(
            log.message[:60]
            for log in await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        )
    return {
        "events": Counter(e.event for e in events if not e.event.startswith(OUTCOME)),
        "outcomes": Counter(e.event for e in events if e.event.startswith(OUTCOME)),
        "task runs": Counter(t.task_key.rsplit("-", 1)[0] for t in task_runs),
        "task-run states": task_states,
        "flow-run states": flow_states,
        "log lines": logs,
    }


def _validated() -> tuple[str, int]:
    with session_scope() as session:
        bundle = factories.validated_report(session)
        return bundle.report.id, bundle.version.version


async def test_one_report_costs_the_prefect_server_no_more_than_its_budget(site, monkeypatch):
    monkeypatch.setenv("RIS_WORKER_LEASE_SECONDS", "600")  # the orphan sweep runs at start only
    await apply_deployments(WORK_POOL)
    worker = RisWorker(WORK_POOL, limit=4, name="budget-worker")
    serving = asyncio.create_task(worker.start(printer=lambda *_: None))
    try:
        await asyncio.wait_for(worker.ready.wait(), 120)
        warm_id, warm_version = _validated()  # what the first run pays once (deployment read, flow loaded)
        await _unobserved(_final_run(await start_lifecycle(warm_id, warm_version)))
        await all_acknowledged([warm_id])

        report_id, version = _validated()
        since = utcnow()
        with counting_requests(monkeypatch) as requests:
            run_id = await start_lifecycle(report_id, version)
            await all_acknowledged([report_id])
            run = await _unobserved(_final_run(run_id))
            await APILogWorker.drain_all(timeout=10)  # its last log lines are sent (and counted)
        costs = {"API requests": requests, **await _unobserved(_written(run_id, report_id, since))}
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    assert run.state.is_completed(), run.state
    with session_scope() as session:
        deliveries = len(session.exec(select(Delivery).where(Delivery.report_id == report_id)).all())
    outcomes = costs.pop("outcomes")
    assert 1 <= sum(outcomes.values()) <= deliveries, outcomes  # at least the PFI's acknowledgement
    print({what: sum(counts.values()) for what, counts in costs.items()})  # shown by `pytest -rP`
    over = {what: counts for what, counts in costs.items() if sum(counts.values()) > BUDGET[what]}
    assert not over, "one report costs the Prefect server more than its budget:\n" + "\n".join(
        f"- {what}: {sum(counts.values())} > {BUDGET[what]}: {dict(counts)}" for what, counts in over.items()
    )
