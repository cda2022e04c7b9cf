"""A private Redis on loopback for the tests and the benchmark (Debian's redis-server): a free port, no
persistence, a throw-away folder, stopped at exit. Starts in well under a second."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def available() -> bool:
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """`with PrivateRedis() as r: r.url()` (database 0) or `r.url(1)`."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="ris-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def server_pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PrivateRedis:
        log = self.base / "log"
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.base),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url(), socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    said = log.read_text()
                    self.__exit__()
                    raise RuntimeError(f"redis-server did not start: {said}") from None
                time.sleep(0.05)
        client.close()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
