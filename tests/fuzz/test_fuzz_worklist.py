"""Fuzz of the worklist loader on real files and a real SQLite store: records with fields replaced by any
JSON, removed, added or duplicated, sections of the wrong shape, files that are not JSON. Every case ends
in a clear refusal (`section[i] field: reason`, or one line for the file) or stored records, exactly the
ones it counts; loading the same file again stores nothing more (everything stored is "unchanged")."""

from __future__ import annotations

import copy
import itertools
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from ris.operations.demo import sample_worklist
from ris.store import db
from ris.store.models import Correspondent, Exam, Patient, Report
from ris.worklist import loader as worklist
from tests.fuzz.conftest import (
    digest,
    fuzz,
)

FUZZ = fuzz(40)
BASE = sample_worklist(2)
SECTIONS = ("correspondents", "patients", "exams", "reports")
COUNTED = {"correspondents": Correspondent, "patients": Patient, "exams": Exam, "reports": Report}
REFUSAL = re.compile(r"^((correspondents|patients|exams|reports)\[\d+\] \S.*|\w+: \S.*)$")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
files = itertools.count()


@st.composite
def worklists(draw) -> dict | bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))  # not a worklist at all
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(SECTIONS))
        records = data[section]
        if not isinstance(records, list) or not records:
            continue
        index = draw(st.integers(0, len(records) - 1))
        record = records[index]
        action = draw(st.sampled_from(["set", "drop", "add", "duplicate", "record", "section"]))
        if action in ("set", "drop") and isinstance(record, dict) and record:
            name = draw(st.sampled_from(sorted(record)))
            if action == "set":
                record[name] = draw(json_values)
            else:
                del record[name]
        elif action == "add" and isinstance(record, dict):
            record[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        elif action == "duplicate":
            records.append(copy.deepcopy(record))
        elif action == "record":
            records[index] = draw(json_values)
        elif action == "section":
            data[section] = draw(json_values)
    return data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pause, worklist.PAUSE = worklist.PAUSE, 0.0  # nothing else writes here: no need to let go of the lock
    yield tmp_path_factory.mktemp("fuzz-worklists")
    worklist.PAUSE = pause


def counts(url: str) -> dict[str, int]:
    with Session(db.get_engine(url)) as s:
        return {name: s.exec(select(func.count()).select_from(m)).one() for name, m in COUNTED.items()}


def load(url: str, path: Path) -> worklist.LoadReport | str:
    with db.session_scope(url) as session:
        try:
            return worklist.load_file(session, path, commit=True)
        except worklist.RecordRefused as exc:
            return str(exc)


@FUZZ
@given(worklists())
def test_every_worklist_is_refused_clearly_or_stored_exactly_and_a_reload_adds_nothing(
    migrated_template: Path, folder: Path, content: dict | bytes
) -> None:
    n = next(files)
    shutil.copy(migrated_template, folder / f"{n}.db")
    url = f"sqlite:///{folder / f'{n}.db'}"
    path = folder / f"{n}.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    empty = digest(url)
    try:
        first = load(url, path)
        if isinstance(first, str):  # the file itself is refused, in one line naming it
            assert first.startswith(f"{n}.json: ") and "\n" not in first
            assert digest(url) == empty
            return
        assert first.stopped is None
        assert all(REFUSAL.match(line) for line in first.refused), first.refused
        assert counts(url) == first.loaded  # exactly the records it says it stored
        stored = digest(url)
        again = load(url, path)
        assert again.loaded == dict.fromkeys(SECTIONS, 0)
        assert again.unchanged == {k: first.loaded[k] + first.unchanged[k] for k in SECTIONS}
        assert again.refused == first.refused
        assert digest(url) == stored
    finally:
        db.get_engine(url).dispose()
