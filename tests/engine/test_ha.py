"""Prefect's HA topology as a site runs it, every part a real process on loopback: a private PostgreSQL and
Redis, `ris server upgrade`, two API servers without services (`ris server api`), the services apart
(`ris server services`), `ris server deploy`, one `ris worker` attached to each API server, the ZAM and
PAM-FR listeners (`ris hl7 listen`, `ris identity listen`), all with the site's auth string. A report
goes through to the sandbox PFI; one API server is killed (SIGKILL) and the next report still goes
through, by the other server's worker."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from cli.api_auth import authorization
from deployments.runs import start_lifecycle
from ris.store import db
from ris.store.db import session_scope
from sandbox.pfi import PfiSandbox
from tests import factories, pgcluster, redisserver
from tests.cli_process import RIS, isolated_env, run_ris
from tests.conftest import ROOT
from tests.engine.conftest import LEASE_S, all_acknowledged, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not pgcluster.available(), reason="PostgreSQL server binaries are not installed"),
    pytest.mark.skipif(not redisserver.available(), reason="redis-server is not installed (./run does)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Site:
    """The site's processes, each logging to a file of its own; all stopped at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("w") as out:
            process = subprocess.Popen(
                [*RIS, *args], cwd=ROOT, env={**self.env, **extra}, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def wait_for(self, name: str, text: str, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            assert self.processes[name].poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            assert time.monotonic() < deadline, f"{name} not ready:\n{self.log(name)[-3000:]}"
            time.sleep(0.3)

    def wait_healthy(self, api: str, name: str, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.processes[name].poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            assert time.monotonic() < deadline, f"{name} not healthy:\n{self.log(name)[-3000:]}"
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

    def stop(self) -> None:
        """Ctrl-C for each, then SIGKILL for what still runs, whatever interrupts the wait."""
        try:
            for process in self.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 20
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()


@pytest.fixture
def backing() -> Iterator[tuple[pgcluster.PrivatePostgres, redisserver.PrivateRedis]]:
    with pgcluster.PrivatePostgres("-c max_connections=200") as postgres, redisserver.PrivateRedis() as redis:
        postgres.create_database("prefect")
        postgres.create_database("ris")
        yield postgres, redis


async def _validated_and_started(api: str, auth: str) -> tuple[str, str]:
    with session_scope() as session:
        bundle = factories.validated_report(session)
        report_id, version = bundle.report.id, bundle.version.version
    with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}):
        return report_id, await start_lifecycle(report_id, version)


async def _completed(api: str, auth: str, run_id: str, timeout: float = 90) -> None:
    with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}):
        async with get_client() as client:
            for _ in range(int(timeout / 0.5)):
                run = await client.read_flow_run(run_id)
                if run.state and run.state.is_final():
                    assert run.state.is_completed(), run.state
                    return
                await asyncio.sleep(0.5)
    pytest.fail(f"flow run {run_id} not final within {timeout} s")


def _events(api: str, auth: str, run_id: str) -> set[str]:
    """What the services process persisted (from Redis) about a run, read through an API server."""
    body = {"filter": {"any_resource": {"id": [f"prefect.flow-run.{run_id}"]}}, "limit": 50}
    answer = httpx.post(f"{api}/events/filter", json=body, headers=authorization(auth), timeout=10)
    answer.raise_for_status()
    return {event["event"] for event in answer.json()["events"]}


@pytest.mark.timeout(600)  # about 2 minutes on 2 idle cores; more when other suites share them
async def test_a_report_goes_through_ha_and_still_does_when_an_api_server_is_killed(
    backing, tmp_path, monkeypatch
):
    postgres, redis = backing
    engine_db = postgres.url("ris")
    db.upgrade(engine_db)
    monkeypatch.setenv("RIS_DATABASE_URL", engine_db)
    auth = f"ris:{secrets.token_urlsafe(24)}"
    apis = [f"http://127.0.0.1:{port}/api" for port in (_free_port(), _free_port())]
    # What every machine of the site sets; the API servers and the services have a PREFECT_HOME each.
    site = Site(
        tmp_path,
        isolated_env(
            tmp_path / "data",
            PREFECT_HOME=str(tmp_path / "prefect-home"),
            PREFECT_SERVER_DATABASE_CONNECTION_URL=postgres.url("prefect", "asyncpg"),
            RIS_REDIS_URL=redis.url(),
            RIS_DATABASE_URL=engine_db,
            RIS_WORKER_LEASE_SECONDS=LEASE_S,
        ),
    )
    try:
        upgraded = run_ris(site.env, "server", "upgrade", timeout=180)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        servers = {"api-a": apis[0], "api-b": apis[1]}
        for name, api in servers.items():
            port = api.rsplit(":", 1)[1].removesuffix("/api")
            site.start(
                name,
                *("server", "api", "--port", port),
                PREFECT_SERVER_API_AUTH_STRING=auth,
                PREFECT_HOME=str(tmp_path / name),
            )
        site.start("services", "server", "services", PREFECT_HOME=str(tmp_path / "services"))
        for name, api in servers.items():
            site.wait_healthy(api, name)

        # Without the string, the API gives neither the block secrets nor a run.
        for path, body in (("block_documents/filter", {"include_secrets": True}), ("flow_runs/", {})):
            assert httpx.post(f"{apis[0]}/{path}", json=body, timeout=10).status_code == 401

        client_a = {"PREFECT_API_URL": apis[0], "PREFECT_API_AUTH_STRING": auth}
        client_b = {"PREFECT_API_URL": apis[1], "PREFECT_API_AUTH_STRING": auth}
        zam_port = _free_port()
        async with PfiSandbox(zam_port=zam_port, matrix_check=False) as pfi:
            with temporary_settings(updates={PREFECT_API_URL: apis[0], PREFECT_API_AUTH_STRING: auth}):
                await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
                await PfiEndpoint(
                    host="127.0.0.1",
                    port=pfi.port,
                    receipt_port=zam_port,
                    ack_timeout_s=30,
                    application=pfi.application,  # the ZAM listener hears only the configured PFI
                    facility=pfi.facility,
                ).asave(DEFAULT_NAME, overwrite=True)
            # The listeners read the site's blocks through the API: they start while the deployments apply.
            site.start("zam", "hl7", "listen", **client_b)
            site.start("pam", "identity", "listen", "--port", "0", **client_b)
            deployed = run_ris({**site.env, **client_a}, "server", "deploy", timeout=180)
            assert deployed.returncode == 0 and "deployments applied" in deployed.stdout, deployed.stderr
            site.start("worker-a", "worker", "--name", "worker-a", **client_a)
            site.start("worker-b", "worker", "--name", "worker-b", **client_b)
            site.wait_for("zam", "ZAM listener on")
            site.wait_for("pam", "PAM listener on")
            site.wait_for("worker-a", "Worker 'worker-a' started")
            site.wait_for("worker-b", "Worker 'worker-b' started")

            first, first_run = await _validated_and_started(apis[0], auth)
            await all_acknowledged([first], timeout=120)
            await _completed(apis[0], auth, first_run)

            site.processes["api-a"].send_signal(signal.SIGKILL)
            site.processes["api-a"].wait()
            second, second_run = await _validated_and_started(apis[1], auth)
            await all_acknowledged([second], timeout=120)
            await _completed(apis[1], auth, second_run)

            assert len(pfi.documents) == 2 and pfi.duplicates == 0
            assert f"'{second_run}'" in site.log("worker-b")  # taken by the worker of the living server

        # The services process persisted the runs' events, published by either API server through Redis.
        await until(
            lambda: all(
                "prefect.flow-run.Completed" in _events(apis[1], auth, r) for r in (first_run, second_run)
            ),
            30,
            "the runs' events to be persisted",
        )
    finally:
        site.stop()
        db.get_engine(engine_db).dispose()
