"""Shared fixtures: a migrated database per test, the ANS reference folder, one Prefect test server."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from ris.store import db

ROOT = Path(__file__).resolve().parents[1]

# Tests never talk to a developer's running engine: no inherited API, and a data folder of their own
# (set before `cli` is imported, which adopts the API of a single box running on its data folder).
os.environ.pop("PREFECT_API_URL", None)
os.environ["RIS_DATA_DIR"] = tempfile.mkdtemp(prefix="ris-tests-")


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
def session(db_url: str) -> Iterator[Session]:
    with Session(db.get_engine(db_url), expire_on_commit=False) as s:
        yield s


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
    from ris.settings import SiteSettings

    settings = SiteSettings()
    await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
    return settings
