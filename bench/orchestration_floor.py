"""What a flow run costs the Prefect server by itself, with no work in it: the floor under the engine's
orchestration cost per report.

The single box's Prefect server (`cli.prefect_server.PrefectServer`: SQLite, services in the process,
batched writes) in its own process; this process runs flows of 0, 1 and 5 empty tasks directly against it (no
deployment, no worker: fewer requests and states than a report's run, so a lower bound), a few at once.
Measured: the server's CPU per flow run, its idle CPU over the same time taken out, and this client's.

    python -m bench.orchestration_floor [--runs 60] [--at-once 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from bench.report import machine
from bench.sites import free_port

IDLE_S = 20.0  # the server's own background work (services' loops), measured then taken out


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def _runs(tasks: int, count: int, at_once: int) -> None:
    from prefect import flow, task

    @task(name="empty-step")
    async def step(n: int) -> int:
        return n

    @flow(name=f"floor-{tasks}-tasks", persist_result=False, log_prints=False)
    async def empty(n: int) -> None:
        for i in range(tasks):
            await step(i)

    slots = asyncio.Semaphore(at_once)

    async def one(n: int) -> None:
        async with slots:
            await empty(n)

    await asyncio.gather(*(one(n) for n in range(count)))


async def measure(runs: int, at_once: int) -> list[dict[str, float]]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cli.prefect_server import PrefectServer

    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        server = await PrefectServer(Path(tmp) / "prefect", free_port()).start()
        try:
            meter, me = psutil.Process(server.pid), psutil.Process()
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                await _runs(1, 2, 1)  # the first runs create the flows and warm the server up
                await asyncio.sleep(5)
                idle_from = _cpu(meter)
                await asyncio.sleep(IDLE_S)
                idle_per_s = (_cpu(meter) - idle_from) / IDLE_S
                rows = []
                for tasks in (0, 1, 5):
                    server_from, client_from, began = _cpu(meter), _cpu(me), time.perf_counter()
                    await _runs(tasks, runs, at_once)
                    await asyncio.sleep(10)  # the services write the runs' events and task runs after them
                    seconds = time.perf_counter() - began
                    server_s = _cpu(meter) - server_from - idle_per_s * seconds
                    rows.append(
                        {
                            "tasks": tasks,
                            "runs": runs,
                            "server_cpu_s_per_run": round(server_s / runs, 3),
                            "client_cpu_s_per_run": round((_cpu(me) - client_from) / runs, 3),
                            "server_idle_cpu_s_per_s": round(idle_per_s, 3),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--at-once", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    rows = asyncio.run(measure(args.runs, args.at_once))
    print(machine())
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
