"""What the Prefect UI shows of a report after each of its runs: a table artifact of its deliveries, one
event per delivery outcome, tags on the run (report, channels, site) and the links between a retry run and
the run it retries; ids only (names, NIR, birth dates and addresses never reach Prefect).

The event of an outcome is `ris.operations.delivery_events`: the ZAM listener of `ris up` and
`ris hl7 listen` emits the same one as soon as a receipt is applied (`cli.receipt_events`)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.runtime import flow_run
from sqlmodel import Session

from blocks import BlockNotSaved
from blocks.site import load_site_settings
from ris.operations.delivery_events import delivery_event
from ris.operations.summary import operations_rows
from ris.store.db import unit_of_work
from ris.store.reports import get_report
from tasks.run_context import store_retries

RETRY_OF = "retry-of:"
# How much earlier than the report's creation, by the engine's clock, a run about it may be dated by the
# Prefect server's.
CLOCK_MARGIN = dt.timedelta(hours=1)


def artifact_key(report_id: str) -> str:
    """`report-<id>`, in the characters artifact keys allow (lowercase letters, digits, dashes)."""
    return "report-" + "".join(c if c.isalnum() else "-" for c in report_id.lower())


def report_tag(report_id: str) -> str:
    return f"report:{report_id}"


def emit_outcome(delivery_id: int, key: str, channel: str, action: str, status: str, report_id: str) -> None:
    """`ris.delivery.<status>` about one delivery, once however often it is reported (see delivery_event)."""
    event = delivery_event(delivery_id, key, channel, action, status, report_id)
    if event is not None:
        emit_event(**event)


async def _tag_current_run(tags: set[str]) -> None:
    """Add `tags` to the current flow run (none outside a run). Its context holds the run's tags, read when
    the run started and kept up to date here, so that only a change costs a request."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    before = list(run.tags)
    merged = sorted(set(before) | tags)
    if merged == sorted(before):
        return
    run.tags = merged  # before the request: another task of this run tagging it at once builds on it
    try:
        async with get_client() as client:
            await client.update_flow_run(run.id, tags=merged)
    except BaseException:
        run.tags = sorted(set(run.tags) - (set(merged) - set(before)))  # a retry of the task sends them
        raise


def report_runs_filter(report_id: str, created: dt.datetime) -> FlowRunFilter:
    """The report's runs: tagged with it, and none dated before the report was created. Tags have no
    index: with that bound the server searches its runs by date, since then, rather than reading every run
    it keeps to find the tag."""
    return FlowRunFilter(
        tags=FlowRunFilterTags(all_=[report_tag(report_id)]),
        expected_start_time=FlowRunFilterExpectedStartTime(after_=created - CLOCK_MARGIN),
    )


def _created(session: Session, report_id: str) -> dt.datetime:
    return get_report(session, report_id).created_at


async def _report_runs(report_id: str) -> list[FlowRun]:
    """The runs that published this report's state, oldest first."""
    runs_filter = report_runs_filter(report_id, await unit_of_work(_created, report_id))
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=runs_filter, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=50
        )


async def _site_tag() -> set[str]:
    try:
        return {f"site:{(await load_site_settings()).facility.finess_geo}"}
    except BlockNotSaved:
        return set()


def _run_lines(runs: list[FlowRun]) -> str:
    lines = []
    for run in runs:
        retried = [t.removeprefix(RETRY_OF) for t in run.tags if t.startswith(RETRY_OF)]
        link = f"[{run.name}](/runs/flow-run/{run.id})"
        lines.append(f"- {link}" + (f", retry of {', '.join(retried)}" if retried else ""))
    return "\n".join(lines)


@task(name="link-retry-run", task_run_name="link-retry-run-{report_id}")
async def link_retry_run(report_id: str) -> list[str]:
    """Tag the current (retry) run with `retry-of:<flow run id>` of the report's runs before it that were
    not retries themselves (the lifecycle, announcement or deletion runs). Returns those ids."""
    if not flow_run.id:
        return []
    pattern = re.compile(r"^retry-")
    originals = [str(r.id) for r in await _report_runs(report_id) if not pattern.match(r.name)]
    await _tag_current_run({report_tag(report_id), *(RETRY_OF + i for i in originals[-3:])})
    return originals


# An API hiccup may pass as a database one does: the task only publishes what is stored.
@task(
    name="publish-report-state",
    task_run_name="publish-report-state-{report_id}",
    **store_retries(transient=httpx.HTTPError),
)
async def publish_report_state(report_id: str) -> int:
    """Refresh the report's table artifact (its description lists the report's runs, each retry with the
    run it retried), tag the current run with the report, its channels and the site, and emit
    `ris.delivery.<outcome>` for each delivery outcome. Returns the number of deliveries shown."""
    rows = await unit_of_work(operations_rows, report_id)
    if flow_run.id:
        await _tag_current_run(
            {report_tag(report_id), *(f"channel:{r['channel']}" for r in rows), *await _site_tag()}
        )
    runs = _run_lines(await _report_runs(report_id))
    await create_table_artifact(
        table=rows,
        key=artifact_key(report_id),
        description=f"Report {report_id}: every delivery, its status and reason (ids only)"
        + (f"\n\nRuns:\n{runs}" if runs else ""),
    )
    for row in rows:
        emit_outcome(row["delivery"], row["key"], row["channel"], row["action"], row["status"], report_id)
    return len(rows)
