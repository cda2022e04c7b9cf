"""The engine as a site runs it, for the lifecycle bench: every part a real process on loopback, started as
its documentation says (docs/engine.md), stopped with everything it started, and the faults a site lives
with (`chaos`): a worker killed, an API server killed and started again, PostgreSQL restarted.

- `single-box`: `ris up` (Prefect server on SQLite, one engine worker, the listeners in one process);
- `postgres`: `ris up` on a private PostgreSQL, and a second `ris worker`;
- `ha`: Prefect's HA topology on a private PostgreSQL and Redis: `ris server upgrade`, two API servers
  without services (`ris server api`) behind an nginx load balancer, the services apart
  (`ris server services`), `ris server deploy`, the ZAM listener (`ris hl7 listen`) and three `ris worker`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil

from bench.report import ROOT

RIS = [sys.executable, "-m", "cli.main"]
READY_S = 240.0  # how long a process may take to say it is ready on a loaded machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Named child processes, each logging to a file of its own (an undrained pipe would block one
    mid-transaction); stopped with Ctrl-C, then killed, with whatever they started themselves."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.seen: dict[int, psutil.Process] = {}  # every descendant ever listed: stopped at the end
        self.starts: Counter[str] = Counter()  # a log per start: `up.log`, then `up-2.log`...

    def start(self, name: str, args: list[str], ready: str | None = None, **extra: str) -> psutil.Process:
        self.starts[name] += 1
        n = self.starts[name]
        log = self.folder / (f"{name}.log" if n == 1 else f"{name}-{n}.log")
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, cwd=ROOT, env={**self.env, **extra}, stdout=out, stderr=subprocess.STDOUT
            )
        self.running[name] = process
        if ready is not None:
            self.wait_for(name, ready)
        return psutil.Process(process.pid)

    def log(self, name: str) -> str:
        """What the latest start of `name` printed."""
        n = self.starts[name]
        return (self.folder / (f"{name}.log" if n == 1 else f"{name}-{n}.log")).read_text(errors="replace")

    def wait_for(self, name: str, text: str) -> None:
        deadline = time.monotonic() + READY_S
        while text not in self.log(name):
            if self.running[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def remember_descendants(self) -> None:
        for process in self.running.values():
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    self.seen[child.pid] = child

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM killer would; its children are left to the end (a rendering
        pool watches its parent and exits by itself)."""
        self.remember_descendants()
        process = self.running.pop(name)
        process.kill()
        process.wait()

    def stop_all(self) -> None:
        self.remember_descendants()
        try:
            for process in self.running.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 60
            for process in self.running.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            for process in self.running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            for leftover in self.seen.values():
                with contextlib.suppress(psutil.Error):
                    leftover.kill()


def site_env(folder: Path, **settings: str) -> dict[str, str]:
    """What every process of a site shares: its data folder, its auth string, no telemetry, nothing of
    the bench's own environment that would point it elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
    env.update(
        RIS_DATA_DIR=str(folder / "data"),
        PREFECT_API_AUTH_STRING=f"bench:{secrets.token_urlsafe(24)}",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        **settings,
    )
    return env


async def save_site_blocks(api_url: str, auth: str, zam_port: int, pfi_port: int) -> None:
    """The site's configuration: the embedded site settings and the PFI endpoint (the sandbox PFI)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from blocks import DEFAULT_NAME
    from blocks.pfi import PfiEndpoint
    from blocks.site import SiteSettingsBlock

    with temporary_settings(updates={PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: auth}):
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(  # the sandbox PFI's own MSH-3 / MSH-4: the ZAM listener hears only them
            host="127.0.0.1",
            port=pfi_port,
            receipt_port=zam_port,
            ack_timeout_s=30,
            application="PFI-SANDBOX",
            facility="PFI-DEMO",
        ).asave(DEFAULT_NAME, overwrite=True)


class OneServer:
    """`ris up` (its own Prefect server, a worker and the listeners), plus `workers - 1` more workers."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int, postgres=None) -> None:
        self.processes = Processes(folder, env)
        self.workers, self.postgres = workers, postgres
        self.api_url = ""
        self.roots: list[psutil.Process] = []

    @property
    def env(self) -> dict[str, str]:
        return self.processes.env

    def _up(self) -> psutil.Process:
        up = self.processes.start(
            "up", [*RIS, "up", "--prefect-port", str(free_port())], ready="Press Ctrl-C"
        )
        self.api_url = next(
            line.split()[-1]
            for line in self.processes.log("up").splitlines()
            if line.startswith("Prefect API:")
        )
        return up

    async def configure(self, zam_port: int, pfi_port: int) -> None:
        """A first start creates the server and the pool; the site's blocks are saved; the next start
        serves with them (its listeners read them at start)."""
        self._up()
        try:
            await save_site_blocks(self.api_url, self.env["PREFECT_API_AUTH_STRING"], zam_port, pfi_port)
        finally:
            self.processes.stop_all()
            self.processes.running.clear()

    def start(self) -> list[psutil.Process]:
        self.roots = [self._up()]
        for n in range(1, self.workers):
            args = [*RIS, "worker", "--pool", "ris", "--name", f"bench-{n}"]
            self.roots.append(
                self.processes.start(f"worker-{n}", args, ready="started", PREFECT_API_URL=self.api_url)
            )
        if self.postgres is not None:
            self.roots.append(psutil.Process(self.postgres.postmaster_pid()))
        return self.roots

    def stop(self) -> None:
        self.processes.stop_all()


class HighAvailability:
    """Prefect's HA topology (docs/engine.md) on a private PostgreSQL and Redis, three workers behind an
    nginx load balancer, as `ris server ...` commands."""

    WORKERS = 3

    def __init__(self, folder: Path, env: dict[str, str], postgres, redis) -> None:
        self.folder, self.postgres, self.redis = folder, postgres, redis
        env = {
            **env,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url("prefect", "asyncpg"),
            "RIS_REDIS_URL": redis.url(),
        }
        self.processes = Processes(folder, env)
        self.api_ports = (free_port(), free_port())
        self.balancer_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.balancer_port}/api"
        self.roots: list[psutil.Process] = []

    @property
    def env(self) -> dict[str, str]:
        return self.processes.env

    def _api_server(self, index: int) -> psutil.Process:
        name, port = f"api-{index}", self.api_ports[index]
        server = self.processes.start(
            name,
            [*RIS, "server", "api", "--port", str(port)],
            PREFECT_SERVER_API_AUTH_STRING=self.env["PREFECT_API_AUTH_STRING"],
            PREFECT_HOME=str(self.folder / name),
        )
        _until_healthy(f"http://127.0.0.1:{port}/api", lambda: self.processes.log(name))
        return server

    def _balancer(self) -> psutil.Process:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.folder / "nginx.conf"
        conf.write_text(nginx_config(self.folder, self.balancer_port, self.api_ports))
        process = self.processes.start("nginx", [nginx, "-c", str(conf), "-p", str(self.folder)])
        _until_healthy(self.api_url, lambda: self.processes.log("nginx"))
        return process

    async def configure(self, zam_port: int, pfi_port: int) -> None:
        """Prefect's database migrated once, the servers, the balancer and the services started, the
        site's blocks saved and the deployments applied, the ZAM listener on."""
        if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
            raise RuntimeError("--mode ha needs nginx as its load balancer: apt-get install nginx-light")
        run = subprocess.run(
            [*RIS, "server", "upgrade"], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise RuntimeError(f"ris server upgrade failed:\n{run.stdout}{run.stderr}")
        self.roots = [self._api_server(0), self._api_server(1), self._balancer()]
        self.roots.append(
            self.processes.start(
                "services", [*RIS, "server", "services"], PREFECT_HOME=str(self.folder / "services")
            )
        )
        client = {"PREFECT_API_URL": self.api_url}
        await save_site_blocks(self.api_url, self.env["PREFECT_API_AUTH_STRING"], zam_port, pfi_port)
        deployed = subprocess.run(
            [*RIS, "server", "deploy"],
            cwd=ROOT,
            env={**self.env, **client},
            capture_output=True,
            text=True,
            check=False,
        )
        if deployed.returncode != 0:
            raise RuntimeError(f"ris server deploy failed:\n{deployed.stdout}{deployed.stderr}")
        self.roots.append(
            self.processes.start("zam", [*RIS, "hl7", "listen"], ready="ZAM listener on", **client)
        )

    def start(self) -> list[psutil.Process]:
        for n in range(1, self.WORKERS + 1):
            args = [*RIS, "worker", "--pool", "ris", "--name", f"worker-{n}"]
            self.roots.append(
                self.processes.start(f"worker-{n}", args, ready="started", PREFECT_API_URL=self.api_url)
            )
        self.roots += [
            psutil.Process(self.postgres.postmaster_pid()),
            psutil.Process(self.redis.server_pid()),
        ]
        return self.roots

    def restart_api_server(self, index: int = 0, down_s: float = 3.0) -> psutil.Process:
        """SIGKILL one API server, and start it again after `down_s`."""
        self.processes.kill(f"api-{index}")
        time.sleep(down_s)
        return self._api_server(index)

    def stop(self) -> None:
        self.processes.stop_all()


def nginx_config(folder: Path, port: int, upstreams: tuple[int, ...]) -> str:
    """The load balancer of docs/engine.md without TLS (loopback): a dead API server is passed over for
    what was not sent to it yet (nginx never resends a POST that reached a server)."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams)
    return f"""daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "nginx-error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder / "nginx-body"};
    proxy_temp_path {folder / "nginx-proxy"};
    client_max_body_size 50m;
    upstream ris_prefect_api {{
        least_conn;
{servers}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ris_prefect_api;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout http_502;
        }}
    }}
}}
"""


def _until_healthy(api_url: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{api_url} did not answer:\n{log()[-3000:]}")


@contextlib.contextmanager
def backing_services(postgres: bool, redis: bool) -> Iterator[tuple[object | None, object | None]]:
    """A private PostgreSQL (databases `ris` and `prefect`) and a private Redis, when asked for."""
    from tests.pgcluster import PrivatePostgres
    from tests.redisserver import PrivateRedis

    with contextlib.ExitStack() as stack:
        database = stack.enter_context(PrivatePostgres("-c max_connections=300")) if postgres else None
        if database is not None:
            database.create_database("ris")
            database.create_database("prefect")
        broker = stack.enter_context(PrivateRedis()) if redis else None
        yield database, broker
