"""The Prefect server processes the engine starts: the single box's (API, UI and services in one process,
started and stopped with the engine), and those of Prefect's HA topology (`ris server api`, `ris server
services`). Their environment is composed in one place, `server_environment`.

The single box's database is SQLite under the data folder, or PostgreSQL when
PREFECT_SERVER_DATABASE_CONNECTION_URL is set (the server reads that variable, never PREFECT_API_*, which
would point it at another server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import httpx

from cli.prefect_retention import site_retention_settings
from ris.site.engine import redis_url as ris_redis_url

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
# Prefect's HA topology ("How to scale self-hosted Prefect"): what the servers share goes through Redis
# (prefect-redis) instead of each process's memory: events and their cache, causal ordering, concurrency
# leases, the workers' cleanup queue, and Docket, which hands the loop services' work to one process.
REDIS_MODULES = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
    "PREFECT_SERVER_WORKER_CHANNEL_CLEANUP_QUEUE_STORAGE": "prefect_redis.cleanup_queue",
}
# Several API servers must not migrate one database, nor register Prefect's block types in it, at the same
# time (two first starts collide on a unique key): `ris server upgrade` does both once, before they start.
HA_DEFAULTS = {
    "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
}


# Prefect's own way of naming the Redis of its messaging, folded into one URL for every part that uses it.
REDIS_PARTS = {
    f"PREFECT_REDIS_MESSAGING_{part}" for part in ("HOST", "PORT", "DB", "USERNAME", "PASSWORD", "SSL")
}


def site_redis_url() -> str | None:
    """The site's Redis: RIS_REDIS_URL, else Prefect's own settings (PREFECT_REDIS_MESSAGING_URL, or its
    _HOST, _PORT, _DB, _USERNAME, _PASSWORD, _SSL); None when the site named none."""
    env = os.environ
    if url := ris_redis_url() or env.get("PREFECT_REDIS_MESSAGING_URL"):
        return url
    if not (host := env.get("PREFECT_REDIS_MESSAGING_HOST")):
        return None

    def part(name: str, default: str) -> str:
        return env.get(f"PREFECT_REDIS_MESSAGING_{name}") or default

    scheme = "rediss" if part("SSL", "false").lower() in ("1", "true", "yes", "on") else "redis"
    password = part("PASSWORD", "")
    login = f"{quote(part('USERNAME', 'default'), safe='')}:{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{login}{host}:{part('PORT', '6379')}/{part('DB', '0')}"


def redis_settings(url: str) -> dict[str, str]:
    """The variables that put Prefect's shared state in the Redis at `url`."""
    return {
        **REDIS_MODULES,
        "PREFECT_REDIS_MESSAGING_URL": url,
        "PREFECT_REDIS_WORKER_CLEANUP_QUEUE_URL": url,
        "PREFECT_SERVER_DOCKET_URL": url,
    }


def server_environment(
    site: Mapping[str, str],
    *,
    auth_string: str | None,
    redis_url: str | None = None,
    **fixed: str,
) -> dict[str, str]:
    """The environment of every Prefect server process the engine starts, in increasing precedence: the
    engine's defaults (batched writes, retention; in HA, Redis and no migration at start), the site's
    environment (`site`: a value the site set wins), then what the engine decides: telemetry off, the
    API's auth string (required from every client, also from the server's own), and `fixed`."""
    defaults = {**BATCHED_WRITES, **site_retention_settings()}
    if redis_url is not None:
        defaults.update(redis_settings(redis_url), **HA_DEFAULTS)
        site = {k: v for k, v in site.items() if k not in REDIS_PARTS}  # folded into the URL
    env = {**defaults, **site, **QUIET, **fixed}
    if auth_string is not None:
        env.update(PREFECT_SERVER_API_AUTH_STRING=auth_string, PREFECT_API_AUTH_STRING=auth_string)
    return env


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
    """The single box's Prefect server (cli.prefect_server_app) in a child process, with its own
    PREFECT_HOME (database, logs). With `auth_string`, its API answers only to clients that send it;
    without, it is open (tests that reopen a stopped box's database)."""

    def __init__(self, home: Path, port: int = 4200, auth_string: str | None = None) -> None:
        self.home = home
        self.port = free_port(port)
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.auth_string = auth_string
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, timeout: float = 120) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        # The UI calls the API at the address it is given, 4200 by default: give it this port's, unless the
        # site set the address a browser reaches it at (its TLS proxy). The server's own API address is
        # itself (what its services call; never another engine's).
        site = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
        env = server_environment(
            {"PREFECT_UI_API_URL": self.api_url, **site},
            auth_string=self.auth_string,
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
        )
        log = (self.home / "server.log").open("ab")
        self._process = subprocess.Popen(
            # -P: the installed engine's module, never a `cli` of the directory `ris up` was started in
            [
                sys.executable,
                "-P",
                "-m",
                "cli.prefect_server_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
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
