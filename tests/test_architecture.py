"""The layout rules of DESIGN.md, checked on the imports: flows orchestrate, tasks encapsulate, `ris`
computes, and the sandbox peers share none of our code. Inside `ris`, the HL7 v2 wire layer sits below the
identity and the channels, and the identity never depends on a channel."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

FIRST_PARTY = {"ris", "tasks", "flows", "blocks", "deployments", "cli", "sandbox", "tests", "bench"}
# What each top-level package may import from the project (plus the field's libraries).
ALLOWED = {
    "ris": {"ris"},
    "tasks": {"ris", "blocks", "tasks"},
    "flows": {"tasks", "blocks", "flows", "ris.store"},
    "blocks": {"ris", "blocks"},
    "deployments": {"flows", "deployments", "ris.store", "ris.process_pool", "ris.site.engine"},
    "sandbox": {"sandbox"},
    # The face: starts runs through deployments, never a task or flow body; the sandbox for `ris demo`.
    "cli": {"ris", "blocks", "deployments", "cli", "flows.names", "sandbox"},
}
FORBIDDEN_LIBRARIES = {"ris": {"prefect"}, "sandbox": {"prefect"}}
# Inside `ris`: what a package must not import (channels may import identity; both import hl7v2).
FORBIDDEN_INSIDE_RIS = {
    "ris/hl7v2": {"ris.identity", "ris.channels"},
    "ris/identity": {"ris.channels"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # What is imported: `from ris import channels` imports ris.channels, not all of ris.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _allowed(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_its_room_allows(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FIRST_PARTY and not _allowed(name, ALLOWED[package]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
            if top in FORBIDDEN_LIBRARIES.get(package, set()):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


@pytest.mark.parametrize("folder", sorted(FORBIDDEN_INSIDE_RIS))
def test_hl7_wire_layer_sits_below_identity_and_channels(folder):
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(_imports(path))
        if _allowed(name, FORBIDDEN_INSIDE_RIS[folder])
    ]
    assert wrong == []
