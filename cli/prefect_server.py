"""A local Prefect server for the single-box mode, started and stopped with the engine.

Its database is SQLite under the data folder, or PostgreSQL when PREFECT_SERVER_DATABASE_CONNECTION_URL
is set (the server reads that variable, never PREFECT_API_*, which would point it at another server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
# Fewer, larger write transactions: on SQLite every write serialises, and a writer that loses the race
# costs the client a retry after a 2 s, then 4 s, back-off. Task-run states and events are recorded in
# batches (once a second at most) instead of one transaction each; a site's environment overrides these.
BATCHED_WRITES = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "2",
}


def free_port(preferred: int) -> int:
    """`preferred` when it is free on loopback, otherwise any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port on 127.0.0.1")


class PrefectServer:
    """The Prefect server (cli.prefect_server_app) in a child process, with its own PREFECT_HOME
    (database, logs)."""

    def __init__(self, home: Path, port: int = 4200) -> None:
        self.home = home
        self.port = free_port(port)
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 120) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**BATCHED_WRITES, **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}}
        # The UI calls the API at the address it is given, 4200 by default: give it this port's. The
        # server's own API address is itself (what its services call; never another engine's).
        env.update(
            QUIET, PREFECT_HOME=str(self.home), PREFECT_UI_API_URL=self.api_url, PREFECT_API_URL=self.api_url
        )
        log = (self.home / "server.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cli.prefect_server_app", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        await self._wait_healthy(timeout)
        return self

    async def _wait_healthy(self, timeout: float) -> None:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"the Prefect server exited; see {self.home / 'server.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.api_url}/health", timeout=2)).status_code == 200:
                        return
                await asyncio.sleep(0.5)
        raise TimeoutError(f"the Prefect server did not answer within {timeout:g} s")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
