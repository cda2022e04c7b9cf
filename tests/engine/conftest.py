"""The engine as a site runs it: `ris worker` processes on the test Prefect server, the sandbox PFI and
our ZAM listener on loopback, the site's blocks saved."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlmodel import select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from ris.channels.hl7.listener import ZamListener
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from sandbox.pfi import PfiSandbox
from tests import factories
from tests.cli_process import RIS, isolated_env
from tests.conftest import ROOT

LEASE_S = "4"  # a killed worker's runs are resumed within seconds, not the production half-minute


@pytest.fixture
async def site(prefect_server, db_url) -> AsyncIterator[PfiSandbox]:
    """The sandbox PFI sending receipts to our listener; the site's blocks point at it."""
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as pfi,
    ):
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1", port=pfi.port, receipt_port=listener.port, ack_timeout_s=30
        ).asave(DEFAULT_NAME, overwrite=True)
        yield pfi


@pytest.fixture
def engine_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """What a machine of the site sets for its workers: the Prefect API and the engine database."""
    return isolated_env(
        tmp_path,
        PREFECT_API_URL=PREFECT_API_URL.value(),
        RIS_DATABASE_URL=db_url,
        RIS_WORKER_LEASE_SECONDS=LEASE_S,
    )


@pytest.fixture
def start_worker(engine_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    """`ris worker --pool ris` in its own process, as started on a site's machine; stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [*RIS, "worker", "--pool", "ris", "--name", name],
                cwd=ROOT,
                env=engine_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        deadline = time.monotonic() + 90
        while f"Worker '{name}' started" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)


def hl7_statuses(report_ids: list[str]) -> dict[str, DeliveryStatus]:
    with session_scope() as session:
        rows = session.exec(
            select(Delivery).where(Delivery.channel == Channel.hl7, Delivery.report_id.in_(report_ids))
        ).all()
        return {row.report_id: row.status for row in rows}


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def all_acknowledged(report_ids: list[str], timeout: float = 180) -> None:
    def done() -> bool:
        statuses = hl7_statuses(report_ids)
        return len(statuses) == len(report_ids) and all(
            s is DeliveryStatus.acknowledged for s in statuses.values()
        )

    await until(done, timeout, f"the hl7 deliveries of {len(report_ids)} reports to be acknowledged")
