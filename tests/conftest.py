"""Shared fixtures: a migrated database per test, the ANS reference folder, one Prefect test server."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from sqlmodel import Session

from ris.store import db
from tests import pgcluster

ROOT = Path(__file__).resolve().parents[1]

# Tests never talk to a developer's running engine: no inherited API, and a data folder of their own
# (set before `cli` is imported, which adopts the API of a single box running on its data folder).
os.environ.pop("PREFECT_API_URL", None)
os.environ["RIS_DATA_DIR"] = tempfile.mkdtemp(prefix="ris-tests-")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding slow tests first: `./run tests` hands whole files to its workers in this order, so
    the long end-to-end files start early and the last ones to run are short (an end-to-end file left for
    last kept one worker busy alone for minutes). The order within a file is kept."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def shared_dir() -> Path | None:
    """The read-only `shared/` folder (specs, ANS reference kit, validator): $RIS_SHARED_DIR or ../shared."""
    candidate = Path(os.environ.get("RIS_SHARED_DIR") or ROOT.parent / "shared")
    return candidate if (candidate / "tools" / "cda_validate.py").is_file() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    found = shared_dir()
    if found is None:
        pytest.skip("the ANS reference folder ../shared is not beside this clone (set RIS_SHARED_DIR)")
    return found


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once from empty; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "ris.db"
    url = f"sqlite:///{path}"
    db.upgrade(url)
    db.clear_engines()  # closing the last connection folds the WAL into the file we copy
    return path


@pytest.fixture
def db_url(migrated_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = tmp_path / "ris.db"
    shutil.copy(migrated_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("RIS_DATABASE_URL", url)
    monkeypatch.setenv("RIS_DATA_DIR", str(tmp_path))
    yield url
    db.clear_engines()


@pytest.fixture
def acting_users(db_url: str, tmp_path: Path) -> list[str]:
    """What `ris demo` does for its own folder, done for the test's: the demo's users (the sample
    worklist's radiologists, with their roles) and the demo allowance of `--by` for them. Permission checks
    stay on: an unknown `--by` or a missing permission is refused as anywhere else."""
    from ris.auth import demo_users

    with db.session_scope(db_url) as s:
        return demo_users.set_up(s, tmp_path, db_url)


def add_user(db_url: str, user_id: str, *roles: str) -> None:
    """A user of the test's engine with these roles, added by the demo's administrator."""
    from ris.auth import users

    with db.session_scope(db_url) as s:
        users.add(s, "10001234567", user_id, roles=roles, reason="test user")


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with Session(db.get_engine(db_url), expire_on_commit=False) as s:
        yield s


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL cluster for the module, migrated (skipped where the server is not installed)."""
    if not pgcluster.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with pgcluster.PrivatePostgres() as cluster:
        url = cluster.url()
        try:
            db.upgrade(url)
            yield url
        finally:
            db.get_engine(url).dispose()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server for the whole test session (about 8 s to start)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
async def saved_site(prefect_server):
    """The demo site settings saved as the site's block, as `ris demo` does (tasks refuse without it)."""
    from blocks import DEFAULT_NAME
    from blocks.site import SiteSettingsBlock
    from ris.site.settings import SiteSettings

    settings = SiteSettings()
    await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
    return settings


@dataclass(frozen=True)
class DemoRun:
    folder: Path  # the demo's own folder: engine database, Prefect home, what each sandbox peer received
    stdout: str
    summary: dict[str, Any]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, shared: Path, worker_id: str) -> DemoRun:
    """The README's main command on the sample worklist (`ris demo --exit --reports 8`), run once for
    every test that reads what it left, whichever pytest-xdist worker asks first (the others wait on the
    lock and read the same run): a whole demo takes one to three minutes on 2 cores."""
    from tests.cli_process import isolated_env, run_ris

    base = tmp_path_factory.getbasetemp()
    root = (base if worker_id == "master" else base.parent) / "shared-demo"
    root.mkdir(exist_ok=True)
    record = root / "run.json"
    with FileLock(str(root / "run.lock")):
        if not record.exists():
            out = root / "summary.json"
            env = isolated_env(root / "data", RIS_SHARED_DIR=str(shared))
            args = ["demo", "--exit", "--reports", "8", "--prefect-port", "4390", "--json", str(out)]
            result = run_ris(env, *args, timeout=600)
            outcome = {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}
            record.write_text(json.dumps(outcome))
        run = json.loads(record.read_text())
    assert run["returncode"] == 0, run["stdout"][-3000:] + run["stderr"][-3000:]
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    return DemoRun(root / "data" / "demo", run["stdout"], summary)
