"""PAM-FR listener throughput: messages/s it holds with 200 concurrent senders, and the ACK latency.

    .venv/bin/python -m bench.bench_listener [--senders 200 20] [--per-sender 5] [--postgres]

The listener (`PamIntake`, the one `ris identity listen` runs) serves from its own process on a throw-away
store (SQLite by default, a private PostgreSQL cluster with --postgres), with room for every sender
(`listeners.pam.max_connections`, default 64, is raised to the number of senders). Each sender keeps one
MLLP link and sends its messages one after the other (original mode: the next after the ACK); every
message is an A28 creating one patient (own domain, no INS, so no INSi call). Latency: send -> ACK read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.report import ROOT, machine, percentile, write_section
from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from tests import pgcluster
from tests.reliability.pam_messages import msa, pam

HEADING = "## Listener"


async def serve(url: str, connections: int) -> None:
    intake = PamIntake(
        IntakePolicy(frozenset({"GAM"})), database_url=url, limits=mllp.Limits(max_connections=connections)
    )
    async with intake.listener() as server:
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()


async def senders(port: int, count: int, per_sender: int) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    codes: list[str] = []

    async def sender(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(per_sender):
                n = k * per_sender + i
                start = time.perf_counter()
                writer.write(mllp.frame(pam(n, cid=f"B{n}")))
                await writer.drain()
                answer = await mllp.read_frame(reader)
                latencies.append(time.perf_counter() - start)
                codes.append(msa(answer)[1] if answer else "closed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(sender(k) for k in range(count)))
    return latencies, codes, time.perf_counter() - start


def measure(url: str, count: int, per_sender: int) -> dict[str, float | int | str]:
    db.upgrade(url)
    db.clear_engines()
    listener = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_listener", "--serve", url, "--connections", str(count + 16)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(listener.stdout.readline().split()[1])
        process = psutil.Process(listener.pid)
        cpu_before = sum(process.cpu_times()[:2])
        latencies, codes, elapsed = asyncio.run(senders(port, count, per_sender))
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        rss = process.memory_info().rss / 2**20
    finally:
        listener.terminate()
        listener.wait(timeout=30)
    total = count * per_sender
    return {
        "store": "PostgreSQL" if url.startswith("postgresql") else "SQLite (WAL)",
        "senders": count,
        "messages": total,
        "accepted": codes.count("AA"),
        "per_s": total / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "max_ms": max(latencies) * 1000,
        "cpu_ms": cpu / total * 1000,
        "rss_mb": rss,
    }


def section(rows: list[dict[str, float | int | str]]) -> str:
    lines = [
        HEADING,
        "",
        "The PAM-FR listener in its own process, N senders at once, each on its own MLLP link sending "
        f"{rows[0]['messages'] // rows[0]['senders']} A28 messages one after the other (each creates a "
        "patient: stored, applied, audited, then ACKed) (`bench/bench_listener.py`). "
        "`listeners.pam.max_connections` must be at least the number of senders (default 64). The listener "
        "is CPU-bound (one process, database work in threads): the ACK latency is mostly the queue of "
        "senders waiting their turn (latency ≈ senders ÷ messages/s). Profiled, hl7apy's parse of the "
        "whole message (`ris.identity.pam.parse`) is about 60 % of the CPU per message.",
        "",
        "| store | senders | messages | AA | messages/s | ACK p50 | ACK p95 | max | CPU/message | RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['senders']} | {r['messages']} | {r['accepted']} | {r['per_s']:.0f} "
            f"| {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['cpu_ms']:.1f} ms "
            f"| {r['rss_mb']:.0f} MB |"
        )
    lines += ["", machine(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, nargs="+", default=[200], help="one run per count")
    parser.add_argument("--per-sender", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also on a private PostgreSQL cluster")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.serve, args.connections))
        return
    rows = []
    for count in args.senders:
        with tempfile.TemporaryDirectory() as folder:
            rows.append(measure(f"sqlite:///{Path(folder) / 'bench.db'}", count, args.per_sender))
    if args.postgres and pgcluster.available():
        for count in args.senders:
            with pgcluster.PrivatePostgres() as cluster:
                rows.append(measure(cluster.url(), count, args.per_sender))
    text = section(rows)
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
