"""What the engine reads at run time ships inside the installed package, so that an engine installed from
a wheel runs from any directory: every file of the engine's packages that is not Python (the INSi WSDL
and XSDs, the migrations' template, prefect.yaml, the sample directory extractions...) is matched by
pyproject's package-data, the only way such a file gets into a wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

from deployments import SPEC
from ris.directory.synthetic import SAMPLE_MAILBOXES, SAMPLE_PERSONS
from ris.identity.insi_client import bundled_wsdl
from ris.store.db import MIGRATIONS
from tests.conftest import ROOT

PACKAGES = ("ris", "tasks", "flows", "blocks", "deployments", "cli", "sandbox")


def package_dirs() -> list[Path]:
    return [
        folder
        for top in PACKAGES
        for folder in (ROOT / top, *(ROOT / top).rglob("*"))
        if folder.is_dir() and folder.name != "__pycache__"
    ]


def packaged() -> set[Path]:
    """The files setuptools adds to a wheel beside the modules: package-data's patterns, those of `*` in
    every package, those of a named package in that package's folder."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]
    found = set()
    for folder in package_dirs():
        package = ".".join(folder.relative_to(ROOT).parts)
        for pattern in [*patterns.get("*", []), *patterns.get(package, [])]:
            found.update(path for path in folder.glob(pattern) if path.is_file())
    return found


def test_every_data_file_of_the_engine_ships_in_the_package():
    data = {
        path
        for folder in package_dirs()
        for path in folder.iterdir()
        if path.is_file() and path.suffix not in (".py", ".pyc")
    }
    assert data, "no data file found: the layout changed"
    assert sorted(map(str, data - packaged())) == []


def test_what_the_engine_reads_at_run_time_is_package_data():
    read = {SPEC, bundled_wsdl(), MIGRATIONS / "script.py.mako", SAMPLE_PERSONS, SAMPLE_MAILBOXES}
    assert read <= packaged()
    schemas = set(bundled_wsdl().parent.rglob("*.xsd"))
    assert len(schemas) >= 10 and schemas <= packaged()
