"""Whole-lifecycle speed on the single box: validated reports through Prefect to the sandbox PFI.

    .venv/bin/python -m bench.bench_lifecycle [--reports 24]

Starts what `ris up` starts (local Prefect server on SQLite, served deployments, sandbox PFI, ZAM
listener) in a throw-away folder, loads the sample worklist, validates every report at once and starts
its lifecycle run through the Prefect API. Measures, per report, validation → HL7 ACK (AA) and
validation → last ZAM receipt, and the throughput of the whole batch. Each run is a subprocess of the
served runner (Prefect's default), so the figures include its start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import select

from bench.report import machine, percentile, write_section
from cli.demo import validate_sample, wait_for_receipts, wait_for_runs
from cli.single_box import SingleBox
from ris import worklist
from ris.demo import sample_worklist
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryEvent, DeliveryStatus, ReportVersion

HEADING = "## Lifecycle"


def _latencies() -> tuple[list[float], list[float]]:
    """Seconds from validation to the HL7 ACK, and to the last receipt, per validated version."""
    to_ack, to_receipts = [], []
    with session_scope() as session:
        for version in session.exec(select(ReportVersion)):
            rows = session.exec(
                select(DeliveryEvent, Delivery)
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.report_id == version.report_id, Delivery.version == version.version)
            ).all()
            acks = [
                e.at for e, d in rows if d.channel is Channel.hl7 and e.status is DeliveryStatus.acknowledged
            ]
            receipts = [
                e.at
                for e, d in rows
                if d.channel is not Channel.hl7
                and e.status in (DeliveryStatus.acknowledged, DeliveryStatus.read)
            ]
            if acks:
                to_ack.append((acks[0] - version.validated_at).total_seconds())
            if receipts:
                to_receipts.append((max(receipts) - version.validated_at).total_seconds())
    return to_ack, to_receipts


async def measure(count: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        started = time.perf_counter()
        async with SingleBox(data_dir, f"sqlite:///{data_dir / 'ris.db'}", prefect_port=4250):
            up_s = time.perf_counter() - started
            data = sample_worklist(count)
            with session_scope() as session:
                worklist.load(session, data, actor="bench")
            batch_start = time.perf_counter()
            run_ids = await validate_sample(data)
            states = await wait_for_runs(run_ids, timeout=1800)
            await wait_for_receipts(timeout=60)
            batch_s = time.perf_counter() - batch_start
            to_ack, to_receipts = _latencies()
    completed = sum(1 for s in states.values() if s == "Completed")
    return {
        "reports": len(run_ids),
        "completed": completed,
        "up_s": up_s,
        "batch_s": batch_s,
        "per_min": 60 * len(run_ids) / batch_s,
        "ack_median_s": statistics.median(to_ack),
        "ack_p90_s": percentile(to_ack, 0.9),
        "receipts_median_s": statistics.median(to_receipts),
    }


def section(r: dict[str, float | int]) -> str:
    return (
        f"{HEADING}\n\n"
        f"{r['reports']} validated reports of the sample worklist started at once on the single box "
        "(Prefect server on SQLite, served deployment, one subprocess per flow run, sandbox PFI with ZAM "
        f"receipts), `bench/bench_lifecycle.py`. {r['completed']} runs completed.\n\n"
        "| single box up | batch | throughput | validation → HL7 ACK (median / p90) | "
        "validation → last receipt (median) |\n|---|---|---|---|---|\n"
        f"| {r['up_s']:.1f} s | {r['batch_s']:.1f} s | {r['per_min']:.1f} reports/min "
        f"| {r['ack_median_s']:.1f} s / {r['ack_p90_s']:.1f} s | {r['receipts_median_s']:.1f} s |\n\n"
        f"{machine()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=24)
    args = parser.parse_args()
    text = section(asyncio.run(measure(args.reports)))
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
