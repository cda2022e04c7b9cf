"""A private PostgreSQL cluster on loopback for the tests and the benchmark: initdb in a throw-away folder,
pg_ctl start on a free port, stopped and removed at exit. Starts in about a second."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def server_binary(name: str) -> str | None:
    """Debian keeps initdb and pg_ctl off the PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def available() -> bool:
    return bool(server_binary("initdb") and server_binary("pg_ctl"))


def _as_postgres(name: str, *args: str) -> list[str]:
    # initdb refuses to run as root; CI runs as root.
    cmd = [server_binary(name) or name, *args]
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """`with PrivatePostgres() as pg: pg.url("ris")` (psycopg) or `pg.url("prefect", "asyncpg")`."""

    def __init__(self, *options: str) -> None:
        self.options = options  # extra `-c name=value` server settings
        self.port = _free_port()
        # Not under pytest's tmp folder: its parents are private to root and the postgres user must enter.
        self.base = Path(tempfile.mkdtemp(prefix="ris-pg-"))
        self.data = self.base / "data"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        subprocess.run(
            _as_postgres(
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
            ),
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        """Stop (fast: connections are cut, as in a failover) and start again with the same settings."""
        subprocess.run(
            _as_postgres(
                "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-l", str(self.base / "log"), "restart"
            ),
            check=True,
            capture_output=True,
        )

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def __enter__(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        subprocess.run(
            _as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-k {self.base}",
                "-c fsync=off",
                *self.options,
            ]
        )
        subprocess.run(
            _as_postgres(
                "pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l", str(self.base / "log"), "start"
            ),
            check=True,
            capture_output=True,
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"), capture_output=True
        )
        shutil.rmtree(self.base, ignore_errors=True)
