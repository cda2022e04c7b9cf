"""The same schema and constraints on PostgreSQL, the path for real sites (private cluster on loopback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from ris.store import db
from tests import factories

pytestmark = pytest.mark.slow


def _server_binary(name: str) -> str | None:
    """Debian keeps initdb and pg_ctl off the PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _as_postgres(name: str, *args: str) -> list[str]:
    # initdb refuses to run as root; CI runs as root.
    cmd = [_server_binary(name) or name, *args]
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not _server_binary("initdb") or not _server_binary("pg_ctl"):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp folder: its parents are private to root and the postgres user must enter.
    base = Path(tempfile.mkdtemp(prefix="ris-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    subprocess.run(
        _as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
    subprocess.run(
        _as_postgres("pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"),
        check=True,
        capture_output=True,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        db.upgrade(url)
        yield url
    finally:
        db.get_engine(url).dispose()
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop"), capture_output=True
        )


def test_migrations_match_the_models_on_postgresql(pg_url):
    with db.get_engine(pg_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_constraints_hold_on_postgresql(pg_url):
    with db.session_scope(pg_url) as session:
        bundle = factories.validated_report(session)
        assert bundle.version.version == 1
    with pytest.raises(IntegrityError, match="ins_matricule_with_oid"), db.session_scope(pg_url) as session:
        factories.patient(session, qualified=False, ins_matricule="279035121518989")
