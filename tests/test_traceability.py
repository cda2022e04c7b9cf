"""docs/traceability.md stays true: all 117 IDs listed, each area's IDs marked, each named test exists."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DOCS = ROOT / "docs"
ID = re.compile(r"^\| (RIS\.[A-Z]+\.\d+) \|", re.MULTILINE)
TEST_REF = re.compile(r"(test_\w+\.py)::(test_\w+)")


def _index() -> dict[str, str]:
    text = (DOCS / "traceability.md").read_text(encoding="utf-8")
    return {m.group(1): line for line in text.splitlines() if (m := ID.match(line))}


def test_every_requirement_of_the_dsr_is_indexed(shared):
    requirements = set(ID.findall((shared / "spec" / "requirements.md").read_text(encoding="utf-8")))
    assert len(requirements) == 117
    assert set(_index()) == requirements


def test_every_documented_id_is_marked_in_the_index():
    index = _index()
    for area in sorted((DOCS / "traceability").glob("*.md")):
        for rid in ID.findall(area.read_text(encoding="utf-8")):
            assert f"traceability/{area.name}" in index[rid], f"{rid} ({area.name}) not marked in the index"


def test_every_named_test_exists():
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for area in (DOCS / "traceability").glob("*.md"):
        for module, name in TEST_REF.findall(area.read_text(encoding="utf-8")):
            if module not in sources or not re.search(rf"def {name}\b", sources[module]):
                missing.append(f"{area.name}: {module}::{name}")
    assert missing == []
