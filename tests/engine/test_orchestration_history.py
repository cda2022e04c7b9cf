"""What the Prefect server keeps does not make each report cost more than the last: the site's retention
(RIS_ORCHESTRATION_RETENTION_DAYS) becomes the server's own settings, under which Prefect's vacuum
deletes old finished runs (their states and logs) and old events; and the queries the engine makes for
every report and every orphan sweep are answered from an index, never by reading every run the server
keeps. Checked on a Prefect server database of the test's own, with Prefect's own models and services."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from prefect.client.schemas import filters as client_filters
from prefect.context import SettingsContext
from prefect.server import models, schemas
from prefect.server.database import provide_database_interface
from prefect.server.database.dependencies import temporary_database_interface
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.events.storage.database import write_events
from prefect.server.schemas import filters
from prefect.server.schemas.sorting import FlowRunSort
from prefect.server.schemas.states import StateType
from prefect.server.services import db_vacuum
from prefect.settings import Settings, get_current_settings

from cli.prefect_retention import retention_settings, site_retention_settings
from cli.prefect_server import server_environment
from deployments import WORK_POOL
from deployments.worker import recoverable_runs_filters
from ris.site.engine import EngineConfigError, orchestration_retention_days
from tasks.report_state import report_runs_filter

pytestmark = pytest.mark.slow

DAYS = 3
NOW = dt.datetime.now(dt.UTC)
OLD = NOW - dt.timedelta(days=DAYS + 7)
RECENT = NOW - dt.timedelta(hours=1)


def test_the_site_retention_is_a_whole_number_of_days_named_when_refused(monkeypatch):
    monkeypatch.delenv("RIS_ORCHESTRATION_RETENTION_DAYS", raising=False)
    assert orchestration_retention_days() == 3
    monkeypatch.setenv("RIS_ORCHESTRATION_RETENTION_DAYS", "14")
    assert site_retention_settings() == retention_settings(14)
    for bad in ("0", "2.5", "a week"):
        monkeypatch.setenv("RIS_ORCHESTRATION_RETENTION_DAYS", bad)
        with pytest.raises(EngineConfigError, match="RIS_ORCHESTRATION_RETENTION_DAYS"):
            orchestration_retention_days()


def test_every_prefect_server_the_engine_starts_gets_the_retention_unless_the_site_set_its_own(monkeypatch):
    monkeypatch.setenv("RIS_ORCHESTRATION_RETENTION_DAYS", "5")
    env = server_environment({}, auth_string=None)
    assert {k: env[k] for k in retention_settings(5)} == retention_settings(5)
    own = {"PREFECT_SERVER_EVENTS_RETENTION_PERIOD": "P30D"}
    assert server_environment(own, auth_string=None)["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] == "P30D"


@pytest.fixture
async def prefect_db(tmp_path, monkeypatch):
    """A Prefect server database of its own (SQLite), with the settings a server started by the engine
    reads from its environment for a retention of DAYS days."""
    for name, value in retention_settings(DAYS).items():
        monkeypatch.setenv(name, value)
    url = f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", url)
    current = SettingsContext.get()
    with temporary_database_interface(), SettingsContext(profile=current.profile, settings=Settings()):
        db = provide_database_interface()
        await db.create_db()
        yield db
        await (await db.engine()).dispose()


async def _deployment(db) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    async with db.session_context(begin_transaction=True) as session:
        flow = await models.flows.create_flow(session, flow=schemas.core.Flow(name="report-lifecycle"))
        pool = await models.workers.create_work_pool(
            session, work_pool=schemas.actions.WorkPoolCreate(name=WORK_POOL, type="ris")
        )
        deployment = await models.deployments.create_deployment(
            session,
            deployment=schemas.core.Deployment(
                name="ris", flow_id=flow.id, work_queue_id=pool.default_queue_id
            ),
        )
    return flow.id, deployment.id, pool.default_queue_id


async def _runs(db, ids, count: int, at: dt.datetime, state: StateType, *, started: bool = True) -> list:
    """`count` lifecycle runs of the pool in `state` since `at`, each with its state row and a log line,
    tagged as the engine tags them."""
    flow_id, deployment_id, queue_id = ids
    runs, states, logs = [], [], []
    for _ in range(count):
        report = f"CR{uuid.uuid4().hex[:8]}"
        run_id, state_id = uuid.uuid4(), uuid.uuid4()
        final = state in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED)
        runs.append(
            dict(
                id=run_id,
                name=f"report-{report}-v1",
                flow_id=flow_id,
                deployment_id=deployment_id,
                work_queue_id=queue_id,
                work_queue_name="default",
                state_type=state,
                state_name=state.value.title(),
                state_timestamp=at,
                expected_start_time=at,
                start_time=at if started else None,
                end_time=at + dt.timedelta(seconds=3) if final else None,
                run_count=int(started),
                tags=[f"report:{report}", "channel:hl7", "site:750000001"],
                parameters={"report_id": report, "version": 1},
                idempotency_key=f"report-{report}-v1",
                total_run_time=dt.timedelta(seconds=3),
                empirical_policy={},
                created=at,
                updated=at,
            )
        )
        states.append(
            dict(id=state_id, flow_run_id=run_id, type=state, name=state.value.title(), timestamp=at)
        )
        logs.append(
            dict(name="prefect.flow_runs", level=20, flow_run_id=run_id, message="done", timestamp=at)
        )
    async with db.session_context(begin_transaction=True) as session:
        await session.execute(sa.insert(db.FlowRun.__table__), runs)
        await session.execute(sa.insert(db.FlowRunState.__table__), states)
        await session.execute(sa.insert(db.Log.__table__), logs)
        await session.execute(
            sa.text("UPDATE flow_run SET state_id = :state WHERE id = :run"),
            [{"run": str(s["flow_run_id"]), "state": str(s["id"])} for s in states],
        )
    return [r["id"] for r in runs]


async def _events(db, count: int, at: dt.datetime) -> None:
    events = [
        ReceivedEvent(
            occurred=at,
            event="ris.delivery.acknowledged",
            resource={"prefect.resource.id": f"ris.delivery.{n}", "ris.channel": "hl7"},
            related=[{"prefect.resource.id": f"ris.report.CR{n}", "prefect.resource.role": "report"}],
            id=uuid.uuid4(),
        )
        for n in range(count)
    ]
    async with db.session_context(begin_transaction=True) as session:
        await write_events(session, events)


async def _count(db, table: str) -> int:
    async with db.session_context() as session:
        return (await session.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()


async def test_prefects_vacuum_removes_what_is_older_than_the_retention_and_keeps_runs_in_progress(
    prefect_db,
):
    vacuum = get_current_settings().server.services.db_vacuum
    assert {"flow_runs", "events"} <= vacuum.enabled_vacuum_types
    assert vacuum.retention_period == get_current_settings().server.events.retention_period
    assert vacuum.retention_period == dt.timedelta(days=DAYS)
    ids = await _deployment(prefect_db)
    await _runs(prefect_db, ids, 40, OLD, StateType.COMPLETED)
    await _runs(prefect_db, ids, 5, OLD, StateType.CRASHED)
    kept = [
        *await _runs(prefect_db, ids, 6, RECENT, StateType.COMPLETED),
        *await _runs(prefect_db, ids, 2, OLD, StateType.RUNNING),  # still running, however old
    ]
    await _events(prefect_db, 30, OLD)
    await _events(prefect_db, 4, RECENT)

    await db_vacuum.vacuum_old_flow_runs(db=prefect_db)
    await db_vacuum.vacuum_old_events(db=prefect_db)

    async with prefect_db.session_context() as session:
        left = (await session.execute(sa.select(prefect_db.FlowRun.id))).scalars().all()
    assert sorted(map(str, left)) == sorted(map(str, kept))
    assert await _count(prefect_db, "flow_run_state") == len(kept)
    assert await _count(prefect_db, "log") == len(kept)
    assert await _count(prefect_db, "events") == 4
    assert await _count(prefect_db, "event_resources") == 4 * 2  # the resource and its related report


async def _query_plan(db, **query) -> list[str]:
    """SQLite's plan of the flow-run query Prefect's server makes for `query` (read_flow_runs)."""
    engine = await db.engine()
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not seen:
            seen.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.session_context() as session:
            await models.flow_runs.read_flow_runs(session=session, **query)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
    [(statement, parameters)] = seen
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return [row[-1] for row in rows]


def _reads_every_run(plan: list[str]) -> bool:
    return any(step.startswith("SCAN flow_run") for step in plan)


def _as_server(client_filter: client_filters.FlowRunFilter) -> filters.FlowRunFilter:
    return filters.FlowRunFilter.model_validate(client_filter.model_dump(mode="json", exclude_unset=True))


async def test_the_engines_queries_of_every_report_and_sweep_search_an_index(prefect_db):
    ids = await _deployment(prefect_db)
    await _runs(prefect_db, ids, 300, OLD, StateType.COMPLETED)
    await _runs(prefect_db, ids, 20, OLD, StateType.CRASHED)
    await _runs(prefect_db, ids, 2, OLD, StateType.CRASHED, started=False)
    pool = filters.WorkPoolFilter(name=filters.WorkPoolFilterName(any_=[WORK_POOL]))

    report_runs = _as_server(report_runs_filter("CR000042", RECENT))
    plan = await _query_plan(
        prefect_db, flow_run_filter=report_runs, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=50
    )
    assert not _reads_every_run(plan), plan
    unbounded = filters.FlowRunFilter(tags=report_runs.tags)  # what the report's runs cost without the bound
    assert _reads_every_run(await _query_plan(prefect_db, flow_run_filter=unbounded, limit=50))

    found = []
    for sweep in recoverable_runs_filters():
        query = dict(flow_run_filter=_as_server(sweep), work_pool_filter=pool)
        plan = await _query_plan(prefect_db, **query)
        assert not _reads_every_run(plan), plan
        async with prefect_db.session_context() as session:
            found += await models.flow_runs.read_flow_runs(session=session, **query)
    assert [run.run_count for run in found] == [0, 0]  # only the runs that crashed before they ran
