"""Whole-lifecycle speed: validated reports through the engine to the sandbox PFI and its receipts.

    python -m bench.lifecycle --mode bare|single-box|postgres|ha --reports N [--rate R] [--chaos] --json FILE
    python -m bench.lifecycle --all --reports N [--rate R]   # every mode, chaos included: BENCHMARKS.md
    python -m bench.lifecycle --history 5000 --rate R        # the cost curves over a long history

- `bare`: the same `ris` code with no Prefect (identity check, documents in the process pool, planning,
  HL7 over MLLP, ZAM receipts), driven by asyncio in this process.
- `single-box`, `postgres`, `ha`: the engine as a site runs it (bench/sites.py), configured with blocks
  that point at a sandbox PFI running in its own process; `--chaos` kills a worker, an API server
  (`ha`) and restarts PostgreSQL during the burst (bench/chaos.py).

Reports are validated all at once, or at a steady R per second. Latency: validation → the last channel
acknowledged (ZAM receipts included). CPU: every process of the engine (workers, their rendering pools,
the Prefect servers, PostgreSQL, Redis), not the sandbox PFI nor this driver. Memory: the workers with
their pools. Failed runs: report runs that ended Failed or Crashed; duplicates: copies the sandbox PFI
filed twice, from its own records. Everything the bench starts is stopped at its end, on Ctrl-C and on
SIGTERM too.
"""

from __future__ import annotations

import os

# Before Prefect is imported: this driver is a client of the engine like the `ris` command.
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "10")

import argparse
import asyncio
import contextlib
import functools
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlmodel import Session, select

from bench.chaos import Chaos
from bench.report import ROOT, machine, percentile, write_section
from bench.sites import HighAvailability, OneServer, backing_services, free_port, site_env
from ris.lifecycle import reports
from ris.operations.demo import sample_worklist, validator_for
from ris.store import db
from ris.store.models import Delivery, DeliveryEvent, DeliveryStatus, ReportVersion
from ris.store.transient import is_transient
from ris.worklist import loader as worklist

HEADING = "## Lifecycle"
HISTORY_HEADING = "## Lifecycle over a long history"
MODES = ("bare", "single-box", "postgres", "ha")
DONE = (DeliveryStatus.acknowledged, DeliveryStatus.read)
WAITING = (DeliveryStatus.pending, DeliveryStatus.sent)


# --- measuring the engine's processes ------------------------------------------------------------------


def role(process: psutil.Process) -> str:
    try:
        line = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    roles = (
        (("prefect_server_app", "prefect server"), "prefect server"),
        (("multiprocessing",), "rendering pool"),
        (("postgres",), "database"),
        (("redis-server",), "redis"),
        (("nginx",), "load balancer"),
        (("hl7 listen", "identity listen"), "listener"),
    )
    return next((name for marks, name in roles if any(mark in line for mark in marks)), "worker")


@dataclass
class Meter:
    """CPU seconds and memory of a set of process trees. Every process ever seen keeps its last reading
    of its own CPU time, so that one killed or restarted (`--chaos`), or a rendering process replaced,
    still counts what it used until then; a process born and gone between two readings (every poll of
    the bench) is missed."""

    roots: list[psutil.Process] = field(default_factory=list)
    peak_rss: float = 0.0
    rss_samples: list[float] = field(default_factory=list)
    _seen: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (role, CPU seconds)

    def _members(self) -> list[tuple[str, psutil.Process]]:
        members = []
        for root in self.roots:
            parent_role = role(root)
            members.append((parent_role, root))
            try:
                children = root.children(recursive=True)
            except psutil.Error:
                continue
            for child in children:
                child_role = role(child)
                members.append((parent_role if child_role == "worker" else child_role, child))
        return members

    def cpu(self) -> dict[str, float]:
        for name, process in self._members():
            try:
                t = process.cpu_times()
            except psutil.Error:
                continue
            self._seen[process.pid] = (self._seen.get(process.pid, (name, 0.0))[0], t.user + t.system)
        by_role: dict[str, float] = {}
        for name, seconds in self._seen.values():
            by_role[name] = by_role.get(name, 0.0) + seconds
        return by_role

    def profile(self, folder: str | None) -> list[subprocess.Popen]:
        """With RIS_BENCH_PROFILE=DIR: py-spy samples each engine process (GIL holders only) into DIR."""
        if not folder:
            return []
        Path(folder).mkdir(parents=True, exist_ok=True)
        spies = []
        for name, process in self._members():
            out = Path(folder) / f"{name.replace(' ', '-')}-{process.pid}.txt"
            command = [
                "py-spy",
                "record",
                "--gil",
                "-r",
                "100",
                "-f",
                "raw",
                "-o",
                str(out),
                "-p",
                str(process.pid),
            ]
            spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return spies

    def sample_memory(self) -> None:
        rss = 0.0
        for name, process in self._members():
            if name in ("worker", "rendering pool"):
                with contextlib.suppress(psutil.Error):
                    rss += process.memory_info().rss / 2**20
        self.rss_samples.append(rss)
        self.peak_rss = max(self.peak_rss, rss)


# --- the workload ----------------------------------------------------------------------------------------


def reports_to_validate(count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A sample worklist with at least `count` reports that leave the RIS (provisional ones never do)."""
    size = count
    while True:
        data = sample_worklist(size)
        items = [i for i in data["reports"] if i["status"] != "provisional"]
        if len(items) >= count:
            return data, items[:count]
        size += max(1, count // 4)


Outcome = tuple[bool, float | None]


class Outcomes:
    """Per validated version: (every delivery settled, seconds from validation to the last ack). A settled
    version stays settled (the bench retries nothing), so a reading asks only for the versions still in
    flight: over a long history it costs what moves, not what is kept (reading every delivery and event
    at each poll made the bench itself the bottleneck past 2 000 reports). A transient fault of the
    database (its restart, under --chaos) is waited out like the engine does."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.settled: dict[tuple[str, int], Outcome] = {}

    def read(self) -> dict[tuple[str, int], Outcome]:
        for attempt in range(1, 30):
            try:
                return self._read()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                time.sleep(min(2.0, 0.2 * attempt))
        return self._read()

    def _read(self) -> dict[tuple[str, int], Outcome]:
        with Session(db.get_engine(self.database_url)) as session:  # a read: no write lock on SQLite
            versions = session.exec(
                select(ReportVersion.report_id, ReportVersion.version, ReportVersion.validated_at)
            ).all()
            moving = sorted({r for r, number, _ in versions if (r, number) not in self.settled})
            rows = (
                session.exec(
                    select(
                        Delivery.id,
                        Delivery.report_id,
                        Delivery.version,
                        Delivery.channel,
                        Delivery.status,
                        DeliveryEvent.status.label("event_status"),
                        DeliveryEvent.at,
                    )
                    .join(DeliveryEvent)
                    .where(Delivery.report_id.in_(moving))
                ).all()
                if moving
                else []
            )
        events: dict[tuple[str, int], list[Any]] = {}
        for row in rows:
            events.setdefault((row.report_id, row.version), []).append(row)
        outcomes = {}
        for report, number, validated_at in versions:
            key = (report, number)
            if key in self.settled:
                outcomes[key] = self.settled[key]
                continue
            pairs = events.get(key, [])
            statuses = {row.id: row.status for row in pairs}
            hl7_done = any(row.channel == "hl7" and row.status in DONE for row in pairs)
            settled = hl7_done and not any(s in WAITING for s in statuses.values())
            acks = [row.at for row in pairs if row.event_status in DONE]
            latency = (max(acks) - validated_at).total_seconds() if settled and acks else None
            outcomes[key] = (settled, latency)
            if settled:
                self.settled[key] = outcomes[key]
        return outcomes


@dataclass(frozen=True)
class RunCount:
    """Report runs that ended Failed or Crashed, and those not ended yet."""

    ended_badly: int
    unfinished: int


SETTLE_AFTER_RUNS_S = 30.0  # receipts still arriving once every run ended: wait this long, then stop


async def drive(
    database_url: str,
    count: int,
    rate: float | None,
    start: Callable[[str, int], Awaitable[Any]],
    runs: Callable[[], Awaitable[RunCount]],
    meter: Meter,
    timeout: float,
    chaos: Chaos | None = None,
    curve_every: int | None = None,
) -> dict[str, Any]:
    """Validate `count` reports (all at once, or `rate` per second), with `chaos` inflicted meanwhile,
    then wait until every version is settled, or every run has ended and nothing moved for a while (a
    run that failed never settles), or `timeout`."""
    data, items = reports_to_validate(count)
    loaded = db.in_unit_of_work(functools.partial(worklist.load, data=data, actor="bench"), database_url)
    if loaded.refused_count:  # a report missing from the store would end the bench half-way, unexplained
        raise SystemExit(f"the sample worklist was refused in part: {loaded.refused[:3]}")
    cpu_before = meter.cpu()
    profilers = meter.profile(os.environ.get("RIS_BENCH_PROFILE"))
    began = time.perf_counter()
    faults = None
    if chaos is not None:
        chaos.began = began
        faults = asyncio.create_task(chaos.inflict())
    curve = Curve(curve_every, meter) if curve_every else None
    poll_s = max(0.5, count / 1000)  # reading every outcome costs the database too
    polled = time.perf_counter()
    reader = Outcomes(database_url)
    starts_refused = 0
    for n, item in enumerate(items, start=1):
        validated = functools.partial(reports.validate, report_id=item["id"], by_rpps=validator_for(item))
        version = (await asyncio.to_thread(db.in_unit_of_work, validated, database_url)).version
        try:
            await start(item["id"], version)
        except Exception as exc:  # as `ris report validate`: the version is kept, a worker catches it up
            starts_refused += 1
            print(f"report {item['id']}: its run did not start ({type(exc).__name__})", file=sys.stderr)
        if rate:  # on a fixed clock: the time a validation takes does not slow the rate down
            await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        if time.perf_counter() - polled >= poll_s:  # a long steady run: read as it goes, not only at its end
            polled = time.perf_counter()
            meter.sample_memory()
            meter.cpu()  # rendering processes replaced along the run are read before they go
            if curve is not None:
                outcomes = await asyncio.to_thread(reader.read)
                curve.sample(sum(settled for settled, _ in outcomes.values()))
    deadline = began + timeout
    quiet_since, last = None, None
    while time.perf_counter() < deadline:
        meter.sample_memory()
        meter.cpu()  # a reading of every process, before one is killed or replaced
        outcomes = await asyncio.to_thread(reader.read)
        if curve is not None:
            curve.sample(sum(settled for settled, _ in outcomes.values()))
        chaos_over = faults is None or faults.done()
        if chaos_over and len(outcomes) >= count and all(settled for settled, _ in outcomes.values()):
            break
        progress = sum(settled for settled, _ in outcomes.values())
        if chaos_over and (await runs()).unfinished == 0 and progress == last:
            quiet_since = quiet_since or time.perf_counter()
            if time.perf_counter() - quiet_since > SETTLE_AFTER_RUNS_S:
                break
        else:
            quiet_since = None
        last = progress
        await asyncio.sleep(poll_s)
    seconds = time.perf_counter() - began
    cpu_after = meter.cpu()
    ended = await runs()
    inflicted = await faults if faults is not None and faults.done() else []
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    latencies = [latency for settled, latency in outcomes.values() if settled and latency is not None]
    cpu = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
    return {
        "reports": count,
        "completed": len(latencies),
        "failed_runs": ended.ended_badly,
        "starts_refused": starts_refused,
        "unfinished_runs": ended.unfinished,
        "seconds": round(seconds, 2),
        "reports_per_s": round(len(latencies) / seconds, 3),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "cpu_s_per_report": round(sum(cpu.values()) / count, 3),
        "peak_rss_mb": round(meter.peak_rss, 1),
        "cpu_s_per_report_by_process": {k: round(v / count, 3) for k, v in sorted(cpu.items())},
        "worker_rss_first_mb": round(meter.rss_samples[0], 1) if meter.rss_samples else None,
        "worker_rss_last_mb": round(meter.rss_samples[-1], 1) if meter.rss_samples else None,
        "chaos": inflicted,
        **({"curve": curve.points} if curve is not None else {}),
    }


@dataclass
class Curve:
    """CPU per report and worker memory along the run, one point every `every` settled reports: flat
    when the cost does not grow with the history."""

    every: int
    meter: Meter
    points: list[dict[str, float]] = field(default_factory=list)
    _cpu: float = 0.0
    _done: int = 0

    def __post_init__(self) -> None:
        self._cpu = sum(self.meter.cpu().values())

    def sample(self, settled: int) -> None:
        if settled < self._done + self.every:
            return
        cpu = sum(self.meter.cpu().values())
        self.points.append(
            {
                "reports": settled,
                "cpu_s_per_report": round((cpu - self._cpu) / (settled - self._done), 3),
                "worker_rss_mb": round(self.meter.rss_samples[-1], 1),
            }
        )
        self._cpu, self._done = cpu, settled


def _per_report_runs(*states: Any) -> dict[str, Any]:
    """The filters of the per-report flow runs (lifecycle, announcement, deletion) in `states`; scheduled
    flows are left out."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    from flows.names import ANNOUNCEMENT_FLOW, DELETION_FLOW, LIFECYCLE_FLOW

    return {
        "flow_filter": FlowFilter(
            name=FlowFilterName(any_=[LIFECYCLE_FLOW, ANNOUNCEMENT_FLOW, DELETION_FLOW])
        ),
        "flow_run_filter": FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states)))
        ),
    }


def _ended_badly() -> tuple[Any, ...]:
    from prefect.client.schemas.objects import StateType

    return (StateType.FAILED, StateType.CRASHED)


async def report_runs() -> RunCount:
    """The per-report flow runs, as the Prefect API of the current settings tells them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    live = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED)
    async with get_client() as client:
        bad = await client.count_flow_runs(**_per_report_runs(*_ended_badly()))
        unfinished = await client.count_flow_runs(**_per_report_runs(*live))
    return RunCount(bad, unfinished)


async def failure_causes(limit: int = 20) -> list[dict[str, Any]]:
    """Why per-report runs ended Failed or Crashed: each run's final state and message, and those of
    its task runs that failed (the messages name the fault; the run names hold ids only)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    bad = _ended_badly()
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(**_per_report_runs(*bad), limit=limit)
        causes = []
        for run in flow_runs:
            tasks = await client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]))
            )
            causes.append(
                {
                    "run": run.name,
                    "state": run.state.name if run.state else None,
                    "message": run.state.message if run.state else None,
                    "tasks": [
                        {"task": t.name, "state": t.state.name, "message": t.state.message}
                        for t in tasks
                        if t.state and t.state.type in bad
                    ],
                }
            )
    return causes


def keep_logs(folder: Path) -> Path:
    """The engine processes' logs of a bench that saw failed runs, kept past its data folder."""
    kept = Path(tempfile.mkdtemp(prefix="bench-failed-"))
    for log in folder.glob("*.log"):
        shutil.copy2(log, kept / log.name)
    return kept


# --- the peers and the engine ----------------------------------------------------------------------------


@dataclass
class SandboxPfi:
    """The sandbox PFI in its own process (its CPU is not the engine's); at its stop it says what it
    received, duplicates included (`received`)."""

    port: int
    summary_file: Path
    received: dict[str, int] = field(default_factory=dict)


@asynccontextmanager
async def sandbox_pfi(zam_port: int, folder: Path):
    pfi = SandboxPfi(free_port(), folder / "pfi-summary.json")
    command = [sys.executable, "-m", "sandbox.pfi", "--port", str(pfi.port), "--zam-port", str(zam_port)]
    process = subprocess.Popen(
        [*command, "--no-matrix-check", "--summary", str(pfi.summary_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "listening" in process.stdout.readline()
        yield pfi
    finally:
        process.terminate()
        process.wait(timeout=30)
        with contextlib.suppress(OSError, ValueError):
            pfi.received = json.loads(pfi.summary_file.read_text())


async def bare(count: int, rate: float | None, timeout: float) -> dict[str, Any]:
    """The lifecycle's `ris` calls, in the order the flow makes them, without Prefect."""
    from ris import documents, process_pool
    from ris.channels.hl7 import publish
    from ris.channels.hl7.client import PfiClient
    from ris.channels.hl7.listener import ZamListener
    from ris.hl7v2.ack_writer import Party
    from ris.identity import gate
    from ris.lifecycle.distribution import plan_version
    from ris.site.settings import SiteSettings
    from ris.store import documents as stored
    from ris.store.db import unit_of_work

    settings = SiteSettings()
    failures: list[BaseException] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'ris.db'}"
        os.environ["RIS_DATABASE_URL"] = url
        db.upgrade(url)
        pool = process_pool.shared().start()
        me = Party(settings.hl7.sending_application, settings.facility.finess_geo)
        async with (
            ZamListener(me=me, tz=settings.timezone) as zam,
            sandbox_pfi(zam.port, Path(folder)) as pfi,
        ):
            client = PfiClient("127.0.0.1", pfi.port, 30)

            async def lifecycle(report_id: str, version: int) -> None:
                await unit_of_work(gate.check_version, report_id, version)
                facts = await unit_of_work(documents.collect_version, report_id, version, settings)
                built = await pool.run(documents.render, facts, settings)
                await asyncio.to_thread(stored.keep, report_id, version, built)
                await unit_of_work(plan_version, report_id, version, pfi=True)
                attempt = await unit_of_work(publish.prepare, report_id, version, "initial", settings)
                await client.send(attempt.er7, attempt.control_id)
                await unit_of_work(publish.record_accepted, attempt, partner=settings.hl7.partner)

            running: set[asyncio.Task[None]] = set()

            def settled(task: asyncio.Task[None]) -> None:
                running.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    failures.append(task.exception())

            async def start(report_id: str, version: int) -> None:
                task = asyncio.create_task(lifecycle(report_id, version))
                running.add(task)
                task.add_done_callback(settled)

            async def runs() -> RunCount:
                return RunCount(ended_badly=len(failures), unfinished=len(running))

            meter = Meter([psutil.Process()])
            result = await drive(url, count, rate, start, runs, meter, timeout)
        process_pool.shutdown_shared()
    return {**result, "duplicates": pfi.received.get("filed_twice")}


async def orchestrated(
    mode: str,
    count: int,
    rate: float | None,
    timeout: float,
    chaos: bool = False,
    curve_every: int | None = None,
) -> dict[str, Any]:
    """The engine as a site runs it (bench.sites), the sandbox PFI in its own process, `count` reports
    driven through it, with the faults of bench.chaos when `chaos`."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from deployments.runs import start_lifecycle

    if chaos and mode == "single-box":
        raise SystemExit("--chaos needs several workers and PostgreSQL: --mode postgres or ha")
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        backing_services(postgres=mode != "single-box", redis=mode == "ha") as (database, broker),
    ):
        folder = Path(tmp)
        env = site_env(folder)
        if database is None:
            env["RIS_DATABASE_URL"] = f"sqlite:///{folder / 'ris.db'}"
        else:
            env["RIS_DATABASE_URL"] = database.url("ris")
        if mode == "postgres":
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database.url("prefect", "asyncpg")
        site = (
            HighAvailability(folder, env, database, broker)
            if mode == "ha"
            else OneServer(folder, env, workers=2 if mode == "postgres" else 1, postgres=database)
        )
        db.upgrade(env["RIS_DATABASE_URL"])
        zam_port = free_port()
        async with sandbox_pfi(zam_port, folder) as pfi:
            try:
                await site.configure(zam_port, pfi.port)
                meter = Meter(site.start())
                api = {PREFECT_API_URL: site.api_url, PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}
                with temporary_settings(updates=api):
                    result = await drive(
                        env["RIS_DATABASE_URL"],
                        count,
                        rate,
                        start_lifecycle,
                        report_runs,
                        meter,
                        timeout,
                        Chaos(site, meter.roots) if chaos else None,
                        curve_every,
                    )
                    if result["failed_runs"]:  # read before the engine and its data folder go
                        result["failure_causes"] = await failure_causes()
                        result["logs_kept_in"] = str(keep_logs(folder))
            finally:
                site.stop()
        return {**result, "duplicates": pfi.received.get("filed_twice")}


async def measure(
    mode: str,
    count: int,
    rate: float | None,
    timeout: float,
    chaos: bool = False,
    curve_every: int | None = None,
) -> dict[str, Any]:
    if mode == "bare":
        result = await bare(count, rate, timeout)
    else:
        result = await orchestrated(mode, count, rate, timeout, chaos, curve_every)
    return {"mode": mode, "rate": rate, **result}


# --- BENCHMARKS.md ---------------------------------------------------------------------------------------


def _load(r: dict[str, Any]) -> str:
    load = f"{r['rate']:g}/s" if r["rate"] else "all at once"
    return f"{load}, chaos" if r.get("chaos") else load


def _by_process(r: dict[str, Any]) -> str:
    return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in r["cpu_s_per_report_by_process"].items())


def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "–"


def _row(r: dict[str, Any], bare: dict[str, Any] | None) -> str:
    """One run; its ratios to `bare` under the same load (throughput, and CPU per report)."""
    speed = _ratio(r["reports_per_s"], bare and bare["reports_per_s"])
    cpu = _ratio(r["cpu_s_per_report"], bare and bare["cpu_s_per_report"])
    return (
        f"| {r['mode']} | {_load(r)} | {r['completed']}/{r['reports']} | {r.get('failed_runs', 0)} "
        f"| {r.get('duplicates', 0)} | {r['reports_per_s']:.2f} | {speed} "
        f"| {r['latency_p50_s']} s / {r['latency_p95_s']} s | {r['cpu_s_per_report']:.2f} | {cpu} "
        f"| {r['peak_rss_mb']:.0f} |"
    )


def _single_box_median(results: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in results if r["mode"] == "single-box" and not r["rate"]]
    if len(runs) < 3:
        return []
    speed = statistics.median(r["reports_per_s"] for r in runs)
    cpu = statistics.median(r["cpu_s_per_report"] for r in runs)
    return [
        f"Single box, median of {len(runs)} runs all at once: {speed:.2f} reports/s, {cpu:.2f} CPU s per "
        "report (targets: ≥ 2 reports/s, ≤ 0.5 CPU s).",
        "",
    ]


def section(results: list[dict[str, Any]]) -> str:
    bare = {r["rate"]: r for r in results if r["mode"] == "bare"}
    chaos = [r for r in results if r.get("chaos")]
    lines = [
        HEADING,
        "",
        "Validated reports of the sample worklist through the whole lifecycle against the sandbox PFI "
        "(`python -m bench.lifecycle --all`), one run per line, all from one invocation. Failed runs: "
        "report runs that ended Failed or Crashed; duplicates: copies the sandbox PFI filed twice (the same "
        "content under two MSH-10), from its own records. Latency: validation → last channel acknowledged "
        "(ZAM receipts included); CPU: every engine process (workers, rendering pools, Prefect servers and "
        "services, load balancer, PostgreSQL, Redis); memory: the workers with their pools. Ratios compare "
        "with `bare` under the same load.",
        "",
        "| mode | load | completed | failed runs | duplicates | reports/s | ÷ bare | latency p50 / p95 "
        "| CPU s/report | × bare | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(r, bare.get(r["rate"])) for r in results],
        "",
        *_single_box_median(results),
        *(["Chaos (bench/chaos.py), as inflicted:", ""] if chaos else []),
        *[f"- {r['mode']}: " + "; ".join(r["chaos"]) for r in chaos],
        *([""] if chaos else []),
        "CPU per report by process:",
        "",
        *[f"- {r['mode']} ({_load(r)}): " + _by_process(r) for r in results],
        "",
        machine(),
    ]
    return "\n".join(lines) + "\n"


def history_section(result: dict[str, Any]) -> str:
    """The curves of a long run at a steady rate: CPU per report and worker memory along the history."""
    r = result
    command = f"python -m bench.lifecycle --history {r['reports']} --rate {r['rate']:g}"
    rows = [
        f"| {p['reports']} | {p['cpu_s_per_report']:.3f} | {p['worker_rss_mb']:.0f} |" for p in r["curve"]
    ]
    lines = [
        HISTORY_HEADING,
        "",
        f"{r['reports']} reports at a steady {r['rate']:g} per second through the {r['mode']} mode "
        f"(`{command}`): {r['completed']} completed, {r['failed_runs']} failed runs, {r['duplicates']} "
        f"duplicates, {r['starts_refused']} runs the API refused to start (caught up by a worker). "
        "Each line: the CPU per report of every engine process over the reports settled since the line "
        "before, and the workers' memory (with their rendering pools) at that point.",
        "",
        "| reports settled | CPU s per report (window) | worker RSS MB |",
        "|---|---|---|",
        *rows,
        "",
        *_failure_lines(r.get("failure_causes", [])),
        machine(),
    ]
    return "\n".join(lines) + "\n"


def _failure_lines(causes: list[dict[str, Any]]) -> list[str]:
    """The failed runs' own messages, the first line of each, as the API kept them."""
    if not causes:
        return []

    def first(text: str | None) -> str:
        return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else "(no message)"

    lines = ["Failed runs, as their states say:", ""]
    for cause in causes:
        tasks = "; ".join(f"{t['task']}: {first(t['message'])}" for t in cause["tasks"]) or "no task failed"
        lines.append(f"- {cause['run']}: {cause['state']}, {first(cause['message'])} ({tasks})")
    return [*lines, ""]


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM (a timeout, a CI job cancelled) unwinds like Ctrl-C: every process started is stopped."""
    raise KeyboardInterrupt


# --all: each mode all at once (the single box three times, for its median), the scaled-out modes with and
# without chaos, then bare and the single box at a steady rate (latency under a load they keep up with).
ALL_RUNS = (
    ("bare", False, False),
    *(("single-box", False, False),) * 3,
    ("postgres", False, False),
    ("postgres", False, True),
    ("ha", False, False),
    ("ha", False, True),
    ("bare", True, False),
    ("single-box", True, False),
)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--all", action="store_true", help="every mode, with chaos, into BENCHMARKS.md")
    parser.add_argument("--history", type=int, metavar="N", help="N reports at --rate: the cost curves")
    parser.add_argument(
        "--chaos", action="store_true", help="kill a worker, an API server, restart PostgreSQL"
    )
    parser.add_argument("--reports", type=int, default=60)
    parser.add_argument("--rate", type=float, default=None, help="reports validated per second")
    parser.add_argument("--json", type=Path, help="write the result(s) as JSON here")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if sum(map(bool, (args.mode, args.all, args.history))) != 1:
        parser.error("give one of --mode, --all, --history")
    if args.history:
        rate = args.rate or 1.0
        result = asyncio.run(
            measure(
                args.mode or "single-box", args.history, rate, args.timeout, curve_every=args.history // 20
            )
        )
        print(json.dumps(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_section(HISTORY_HEADING, history_section(result))
        return
    runs = (
        [(args.mode, args.rate, args.chaos)]
        if args.mode
        else [(mode, (args.rate or 0.5) if steady else None, chaos) for mode, steady, chaos in ALL_RUNS]
    )
    results = []
    for mode, rate, chaos in runs:
        results.append(asyncio.run(measure(mode, args.reports, rate, args.timeout, chaos)))
        print(json.dumps(results[-1]), flush=True)  # each run as it ends: a long series keeps its figures
        if args.json:
            text = json.dumps(results[0] if args.mode else results, indent=2)
            args.json.write_text(text + "\n", encoding="utf-8")
    if args.all:
        write_section(HEADING, section(results))


if __name__ == "__main__":
    main()
