"""Whole-lifecycle speed: validated reports through the engine to the sandbox PFI and its receipts.

    python -m bench.lifecycle --mode bare|single-box|postgres --reports N [--rate R] --json FILE
    python -m bench.lifecycle --all --reports N [--rate R]     # the three modes, into BENCHMARKS.md

- `bare`: the same `ris` code with no Prefect (identity check, documents in the process pool, planning,
  HL7 over MLLP, ZAM receipts), driven by asyncio in this process.
- `single-box`: `ris up` as a site runs it (Prefect server on SQLite, one engine worker in the same
  process, listeners), configured with blocks that point at a sandbox PFI running in its own process.
- `postgres`: the same with the Prefect server and the engine database on a private PostgreSQL, and a
  second worker (`ris worker --pool ris`).

Reports are validated all at once, or at a steady R per second. Latency: validation → the last channel
acknowledged (ZAM receipts included). CPU: every process of the engine (workers, their rendering pools,
the Prefect server, PostgreSQL), not the sandbox PFI nor this driver. Memory: the workers with their pools.
"""

from __future__ import annotations

import os

# Before Prefect is imported: this driver is a client of the engine like the `ris` command.
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "10")

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlmodel import select

from bench.report import ROOT, machine, percentile, write_section
from ris import reports, worklist
from ris.demo import sample_worklist, validator_for
from ris.store import db
from ris.store.db import session_scope
from ris.store.models import Delivery, DeliveryEvent, DeliveryStatus, ReportVersion

HEADING = "## Lifecycle"
MODES = ("bare", "single-box", "postgres")
DONE = (DeliveryStatus.acknowledged, DeliveryStatus.read)
WAITING = (DeliveryStatus.pending, DeliveryStatus.sent)
RIS = [sys.executable, "-m", "cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- measuring the engine's processes ------------------------------------------------------------------


def role(process: psutil.Process) -> str:
    try:
        line = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    if "prefect_server_app" in line or "prefect server start" in line:
        return "prefect server"
    if "multiprocessing" in line:
        return "rendering pool"
    if "postgres" in line:
        return "database"
    return "worker"


@dataclass
class Meter:
    """CPU seconds and memory of a set of process trees: a tree's exited, waited-for children are in
    its `children_*` times, the live ones are read on their own."""

    roots: list[psutil.Process] = field(default_factory=list)
    peak_rss: float = 0.0
    rss_samples: list[float] = field(default_factory=list)

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
        by_role: dict[str, float] = {}
        for name, process in self._members():
            try:
                t = process.cpu_times()
            except psutil.Error:
                continue
            by_role[name] = by_role.get(name, 0.0) + t.user + t.system + t.children_user + t.children_system
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


def version_outcomes(database_url: str) -> dict[tuple[str, int], tuple[bool, float | None]]:
    """Per validated version: (every delivery settled, seconds from validation to the last ack)."""
    outcomes = {}
    with session_scope(database_url) as session:
        versions = session.exec(select(ReportVersion)).all()
        rows = session.exec(select(Delivery, DeliveryEvent).join(DeliveryEvent)).all()
    events: dict[tuple[str, int], list[tuple[Delivery, DeliveryEvent]]] = {}
    for delivery, event in rows:
        events.setdefault((delivery.report_id, delivery.version), []).append((delivery, event))
    for version in versions:
        key = (version.report_id, version.version)
        pairs = events.get(key, [])
        statuses = {d.id: d.status for d, _ in pairs}
        hl7_done = any(d.channel.value == "hl7" and d.status in DONE for d, _ in pairs)
        settled = hl7_done and not any(s in WAITING for s in statuses.values())
        acks = [e.at for _, e in pairs if e.status in DONE]
        latency = (max(acks) - version.validated_at).total_seconds() if settled and acks else None
        outcomes[key] = (settled, latency)
    return outcomes


async def drive(
    database_url: str,
    count: int,
    rate: float | None,
    start: Callable[[str, int], Awaitable[Any]],
    meter: Meter,
    timeout: float,
) -> dict[str, Any]:
    data, items = reports_to_validate(count)
    with session_scope(database_url) as session:
        worklist.load(session, data, actor="bench")
    cpu_before = meter.cpu()
    profilers = meter.profile(os.environ.get("RIS_BENCH_PROFILE"))
    began = time.perf_counter()
    for item in items:
        with session_scope(database_url) as session:
            version = reports.validate(session, item["id"], validator_for(item)).version
        await start(item["id"], version)
        if rate:
            await asyncio.sleep(1 / rate)
    deadline = began + timeout
    while time.perf_counter() < deadline:
        meter.sample_memory()
        outcomes = version_outcomes(database_url)
        if len(outcomes) >= count and all(settled for settled, _ in outcomes.values()):
            break
        await asyncio.sleep(0.5)
    seconds = time.perf_counter() - began
    cpu_after = meter.cpu()
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    latencies = [latency for settled, latency in outcomes.values() if settled and latency is not None]
    cpu = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
    return {
        "reports": count,
        "completed": len(latencies),
        "seconds": round(seconds, 2),
        "reports_per_s": round(len(latencies) / seconds, 3),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "cpu_s_per_report": round(sum(cpu.values()) / count, 3),
        "peak_rss_mb": round(meter.peak_rss, 1),
        "cpu_s_per_report_by_process": {k: round(v / count, 3) for k, v in sorted(cpu.items())},
        "worker_rss_first_mb": round(meter.rss_samples[0], 1) if meter.rss_samples else None,
        "worker_rss_last_mb": round(meter.rss_samples[-1], 1) if meter.rss_samples else None,
    }


# --- the peers and the engine ----------------------------------------------------------------------------


@asynccontextmanager
async def sandbox_pfi(zam_port: int):
    """The sandbox PFI in its own process (its CPU is not the engine's)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.pfi",
            "--port",
            str(port),
            "--zam-port",
            str(zam_port),
            "--no-matrix-check",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "listening" in process.stdout.readline()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


async def bare(count: int, rate: float | None, timeout: float) -> dict[str, Any]:
    """The lifecycle's `ris` calls, in the order the flow makes them, without Prefect."""
    from ris import documents, process_pool
    from ris.channels.hl7 import publish
    from ris.channels.hl7.client import PfiClient
    from ris.channels.hl7.listener import ZamListener
    from ris.distribution import plan_version
    from ris.hl7v2.ack_writer import Party
    from ris.identity import gate
    from ris.settings import SiteSettings
    from ris.store import documents as stored
    from ris.store.db import unit_of_work

    settings = SiteSettings()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'ris.db'}"
        os.environ["RIS_DATABASE_URL"] = url
        db.upgrade(url)
        pool = process_pool.shared().start()
        me = Party(settings.hl7.sending_application, settings.facility.finess_geo)
        async with ZamListener(me=me, tz=settings.timezone) as zam, sandbox_pfi(zam.port) as pfi_port:
            client = PfiClient("127.0.0.1", pfi_port, 30)

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

            async def start(report_id: str, version: int) -> None:
                task = asyncio.create_task(lifecycle(report_id, version))
                running.add(task)
                task.add_done_callback(running.discard)

            meter = Meter([psutil.Process()])
            result = await drive(url, count, rate, start, meter, timeout)
        process_pool.shutdown_shared()
    return result


class Engine:
    """`ris up` (and, for PostgreSQL, a second `ris worker`) as subprocesses configured like a site."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int) -> None:
        self.folder, self.env, self.workers = folder, env, workers
        self.processes: list[subprocess.Popen] = []
        self.api_url = ""

    def _spawn(self, args: list[str], env: dict[str, str], ready: str, log_name: str) -> subprocess.Popen:
        """Start a process that logs to a file (an undrained pipe would block it mid-transaction) and
        wait for the line saying it is ready."""
        log = self.folder / log_name
        with log.open("w") as out:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            text = log.read_text()
            if ready in text:
                return process
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{' '.join(args[2:])} did not start:\n{log.read_text()}")

    def _up(self) -> subprocess.Popen:
        process = self._spawn(
            [*RIS, "up", "--prefect-port", str(free_port())], self.env, "Press Ctrl-C", "up.log"
        )
        self.api_url = next(
            line.split()[-1]
            for line in (self.folder / "up.log").read_text().splitlines()
            if line.startswith("Prefect API:")
        )
        return process

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()

    async def configure(self, zam_port: int, pfi_port: int) -> None:
        """A first start creates the server and the pool; the site's blocks are saved; the next start
        serves with them (its listeners read them at start)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from blocks import DEFAULT_NAME
        from blocks.pfi import PfiEndpoint
        from blocks.site import SiteSettingsBlock

        first = self._up()
        try:
            with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
                await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
                await PfiEndpoint(
                    host="127.0.0.1", port=pfi_port, receipt_port=zam_port, ack_timeout_s=30
                ).asave(DEFAULT_NAME, overwrite=True)
        finally:
            self._stop(first)

    def start(self) -> list[psutil.Process]:
        self.processes = [self._up()]
        env = {**self.env, "PREFECT_API_URL": self.api_url}
        for n in range(1, self.workers):
            args = [*RIS, "worker", "--pool", "ris", "--name", f"bench-{n}"]
            self.processes.append(self._spawn(args, env, "started", f"worker-{n}.log"))
        return [psutil.Process(p.pid) for p in self.processes]

    def stop(self) -> None:
        for process in reversed(self.processes):
            self._stop(process)


async def orchestrated(mode: str, count: int, rate: float | None, timeout: float) -> dict[str, Any]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.runs import start_lifecycle
    from tests.pgcluster import PrivatePostgres

    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
        env.update(RIS_DATA_DIR=str(folder), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
        database = None
        if mode == "postgres":
            database = stack.enter_context(PrivatePostgres("-c max_connections=200"))
            database.create_database("ris")
            database.create_database("prefect")
            env["RIS_DATABASE_URL"] = database.url("ris")
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database.url("prefect", "asyncpg")
        else:
            env["RIS_DATABASE_URL"] = f"sqlite:///{folder / 'ris.db'}"
        engine = Engine(folder, env, workers=2 if mode == "postgres" else 1)
        zam_port = free_port()
        pfi_port = await stack.enter_async_context(sandbox_pfi(zam_port))
        await engine.configure(zam_port, pfi_port)
        meter = Meter(engine.start())
        stack.callback(engine.stop)
        if database is not None:
            meter.roots.append(psutil.Process(database.postmaster_pid()))
        with temporary_settings(updates={PREFECT_API_URL: engine.api_url}):
            return await drive(env["RIS_DATABASE_URL"], count, rate, start_lifecycle, meter, timeout)


async def measure(mode: str, count: int, rate: float | None, timeout: float) -> dict[str, Any]:
    result = await (
        bare(count, rate, timeout) if mode == "bare" else orchestrated(mode, count, rate, timeout)
    )
    return {"mode": mode, "rate": rate, **result}


# --- BENCHMARKS.md ---------------------------------------------------------------------------------------


def _load(r: dict[str, Any]) -> str:
    return f"{r['rate']:g}/s" if r["rate"] else "all at once"


def _by_process(r: dict[str, Any]) -> str:
    return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in r["cpu_s_per_report_by_process"].items())


def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "–"


def _row(r: dict[str, Any], bare: dict[str, Any] | None) -> str:
    """One run; its ratios to `bare` under the same load (throughput, and CPU per report)."""
    speed = _ratio(r["reports_per_s"], bare and bare["reports_per_s"])
    cpu = _ratio(r["cpu_s_per_report"], bare and bare["cpu_s_per_report"])
    return (
        f"| {r['mode']} | {_load(r)} | {r['completed']}/{r['reports']} | {r['reports_per_s']:.2f} | {speed} "
        f"| {r['latency_p50_s']} s / {r['latency_p95_s']} s | {r['cpu_s_per_report']:.2f} | {cpu} "
        f"| {r['peak_rss_mb']:.0f} |"
    )


def section(results: list[dict[str, Any]]) -> str:
    bare = {r["rate"]: r for r in results if r["mode"] == "bare"}
    lines = [
        HEADING,
        "",
        "Validated reports of the sample worklist through the whole lifecycle against the sandbox PFI "
        "(`python -m bench.lifecycle --all`), one run per line, all from one invocation. Latency: "
        "validation → last channel acknowledged (ZAM receipts included); CPU: every engine process "
        "(workers, rendering pools, Prefect server, PostgreSQL); memory: the workers with their pools. "
        "Ratios compare with `bare` under the same load.",
        "",
        "| mode | load | completed | reports/s | ÷ bare | latency p50 / p95 | CPU s/report | × bare "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_row(r, bare.get(r["rate"])) for r in results],
        "",
        "CPU per report by process:",
        "",
        *[f"- {r['mode']} ({_load(r)}): " + _by_process(r) for r in results],
        "",
        machine(),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--all", action="store_true", help="every mode, all at once and at --rate")
    parser.add_argument("--reports", type=int, default=60)
    parser.add_argument("--rate", type=float, default=None, help="reports validated per second")
    parser.add_argument("--json", type=Path, help="write the result(s) as JSON here")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if bool(args.mode) == args.all:
        parser.error("give --mode or --all")
    loads = (None, args.rate or 0.5)
    runs = [(args.mode, args.rate)] if args.mode else [(m, r) for m in MODES for r in loads]
    results = []
    for mode, rate in runs:
        results.append(asyncio.run(measure(mode, args.reports, rate, args.timeout)))
        text = json.dumps(results[0] if args.mode else results, indent=2)
        print(json.dumps(results[-1]), flush=True)  # each run as it ends: a long series keeps its figures
        if args.json:
            args.json.write_text(text + "\n", encoding="utf-8")
    if args.all:
        write_section(HEADING, section(results))


if __name__ == "__main__":
    main()
