"""The engine started where a site starts it, never in the checkout: a service manager's working directory
or any folder of an installed engine. The single box (`ris demo`) delivers every report, and the
deployments it stores name the flows by module path; a site with several machines deploys prefect.yaml
with `prefect deploy` from any directory and its `ris worker` takes a report through."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.prefect_server import PrefectServer
from deployments import ENTRYPOINTS, SPEC, WORK_POOL, deployment_name
from deployments.apply import ensure_work_pool
from deployments.runs import start_lifecycle
from ris.store.db import session_scope
from tests import factories
from tests.cli_process import isolated_env
from tests.engine.conftest import all_acknowledged

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
BIN = Path(sys.executable).parent  # the console scripts installed with the engine: `ris`, `prefect`
DELIVERED = {"acknowledged", "read"}


def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not the checkout and holds nothing of the engine."""
    folder = tmp_path / "service-home"
    folder.mkdir()
    assert not Path.cwd().is_relative_to(folder) and not (folder / "flows").exists()
    return folder


async def stored_entrypoints(prefect_home: Path) -> dict[str, tuple[str | None, str | None]]:
    """flow name -> (entrypoint, path) of the deployments a stopped single box left in its Prefect
    database, read back through the API of a server started on it."""
    server = await PrefectServer(prefect_home, 4397).start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            async with get_client() as client:
                found = {}
                for flow_name in ENTRYPOINTS:
                    deployment = await client.read_deployment_by_name(deployment_name(flow_name))
                    found[flow_name] = (deployment.entrypoint, deployment.path)
                return found
    finally:
        server.stop()


def test_a_demo_started_outside_the_checkout_delivers_every_report(tmp_path):
    cwd = elsewhere(tmp_path)
    summary = cwd / "summary.json"
    demo = subprocess.run(
        [BIN / "ris", "demo", "--reports", "2", "--exit", "--prefect-port", "4391", "--json", summary.name],
        cwd=cwd,
        env=isolated_env(cwd / "data"),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    reports = json.loads(summary.read_text(encoding="utf-8"))["reports"]
    assert len(reports) == 2
    for report in reports:
        assert report["status"] == "validated" and report["reasons"] == {}, report
        assert set(report["channels"]) == {"dmp", "mss-ps", "mss-patient", "hl7"}
        assert set(report["channels"].values()) <= DELIVERED, report

    stored = asyncio.run(stored_entrypoints(cwd / "data" / "demo" / "prefect"))
    assert stored == {flow_name: (entrypoint, None) for flow_name, entrypoint in ENTRYPOINTS.items()}
    assert all(
        entrypoint.startswith("flows.") and ".py" not in entrypoint for entrypoint in ENTRYPOINTS.values()
    )


async def test_prefect_deploy_and_a_worker_from_another_directory_take_a_report_through(
    site, engine_env, tmp_path
):
    cwd = elsewhere(tmp_path)
    await ensure_work_pool(WORK_POOL)  # what the first worker of a site does
    deployed = subprocess.run(
        [BIN / "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(SPEC)],
        cwd=cwd,
        env=engine_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    async with get_client() as client:
        for flow_name, entrypoint in ENTRYPOINTS.items():
            deployment = await client.read_deployment_by_name(deployment_name(flow_name))
            assert (deployment.entrypoint, deployment.pull_steps) == (entrypoint, [])

    log = cwd / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [BIN / "ris", "worker", "--pool", WORK_POOL, "--name", "elsewhere"],
            cwd=cwd,
            env=engine_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "Worker 'elsewhere' started" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        with session_scope() as session:
            bundle = factories.validated_report(session)
            report_id, version = bundle.report.id, bundle.version.version
        await start_lifecycle(report_id, version)
        await all_acknowledged([report_id])
        assert "NotAnEngineFlow" not in log.read_text()
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
