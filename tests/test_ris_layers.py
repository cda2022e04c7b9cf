"""The floors of `ris/` (README "Layout"), checked on the imports: a module imports its own folder or a
floor below, never one above, and no two modules or folders import each other. The store is the ground
floor: it imports nothing of `ris` but the engine's environment. The rules of tests/test_architecture.py
(what each top-level package may import) stand beside these."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Bottom to top: a unit (a folder of ris/, a channel, or a root module) may import units of its floor's
# rank or lower; within a floor, only units that do not import it back (the circle test below).
FLOORS: list[set[str]] = [
    {"ris.clock", "ris.text_rules", "ris.process_pool", "ris.site.engine"},
    {"ris.store"},
    {"ris.hl7v2", "ris.tls"},
    {"ris.ids", "ris.site"},
    {"ris.identity"},
    {"ris.directory", "ris.lifecycle"},
    {"ris.documents"},
    {"ris.channels", "ris.channels.mail", "ris.channels.dmp", "ris.channels.hl7", "ris.channels.mssante"},
    {"ris.worklist", "ris.export", "ris.operations"},
    {"ris.auth"},
]
RANK = {unit: rank for rank, floor in enumerate(FLOORS) for unit in floor}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted((ROOT / "ris").rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """The ris modules `module` imports (a `from ris.x import name` counts ris.x.name when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ris."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ris"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
    return {name for name in found if name in MODULES and name != module}


def unit_of(module: str) -> str:
    """The unit a module belongs to: the most specific one FLOORS names (ris.site.engine before ris.site)."""
    for size in range(module.count(".") + 1, 1, -1):
        candidate = ".".join(module.split(".")[:size])
        if candidate in RANK:
            return candidate
    raise AssertionError(f"{module}: in no floor of tests/test_ris_layers.py; place its folder there")


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_module_of_ris_has_a_floor():
    assert sorted(m for m in MODULES if m != "ris" and not any(m.startswith(u) for u in RANK)) == []


def test_no_module_imports_a_floor_above_its_own():
    wrong = [
        f"{module} imports {name} (floor {RANK[unit_of(name)]} above {RANK[unit_of(module)]})"
        for module, names in GRAPH.items()
        if module != "ris"
        for name in sorted(names)
        if RANK[unit_of(name)] > RANK[unit_of(module)]
    ]
    assert wrong == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other_even_through_others():
    assert cycles(GRAPH) == []


def test_no_two_units_import_each_other():
    units: dict[str, set[str]] = defaultdict(set)
    for module, names in GRAPH.items():
        if module != "ris":
            units[unit_of(module)].update(unit_of(n) for n in names if unit_of(n) != unit_of(module))
    assert cycles(units) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_a_reintroduced_circle_is_found(graph, expected):
    assert cycles(graph) == expected
