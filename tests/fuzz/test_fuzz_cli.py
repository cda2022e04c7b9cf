"""Fuzz of the `ris` command's arguments (worklist, identity, report, delivery, audit), in-process on a
real store holding the sample worklist. Every case ends in a result or a clear error (exit 1 or 2, a
first line `error: …`, `refused: …` or the usage error), never a traceback, and a command that fails
leaves the stored state exactly as it was."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from ris.operations.demo import sample_worklist
from ris.store import db
from ris.worklist import loader as worklist
from tests.fuzz.conftest import (
    digest,
    fuzz,
)

FUZZ = fuzz(150)
DATA = sample_worklist(2)
KNOWN = [DATA["patients"][0]["ipp"], DATA["reports"][0]["id"], "1984-04-12", "10001234567", "mss-ps"]
words = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
values = st.one_of(words, st.sampled_from(KNOWN))
files = itertools.count()


@pytest.fixture(scope="module")
def store(migrated_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("fuzz-cli")
    shutil.copy(migrated_template, folder / "ris.db")
    url = f"sqlite:///{folder / 'ris.db'}"
    with Session(db.get_engine(url)) as session:
        assert worklist.load(session, DATA).ok
        session.commit()
    saved = {k: os.environ.get(k) for k in ("RIS_DATABASE_URL", "RIS_DATA_DIR")}
    os.environ.update(RIS_DATABASE_URL=url, RIS_DATA_DIR=str(folder))
    yield url, folder
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    db.get_engine(url).dispose()


@st.composite
def command_lines(draw) -> list[str]:
    a, b, c = draw(values), draw(values), draw(values)
    return draw(
        st.sampled_from(
            [
                ["worklist", "load", a],
                ["worklist", "load", "{file}", "--by", b],
                ["identity", "verify-key", a],
                ["identity", "show", a, "--by", b],
                ["identity", "search", "--by", a, "--birth-date", b, "--name", c],
                ["identity", "search", "--by", a, "--ins", b],
                ["identity", "refusal", a, "--channel", b, "--refuse", "--by", c],
                ["identity", "refusals", a],
                ["report", "show", a],
                ["report", "show", a, "--json"],
                ["delivery", "failed", "--channel", a, "--report", b],
                [a, b],
                ["identity", a, "--by", b],
            ]
        )
    )


@FUZZ
@given(command_lines(), st.binary(max_size=120) | st.sampled_from([b"{}", b'{"patients": [{}]}']))
def test_every_command_line_ends_in_a_result_or_a_clear_error(
    store: tuple[str, Path], argv: list[str], content: bytes
) -> None:
    url, folder = store
    if "{file}" in argv:
        path = folder / f"{next(files)}.json"
        path.write_bytes(content)
        argv = [str(path) if arg == "{file}" else arg for arg in argv]
    before = digest(url)
    result = CliRunner().invoke(app, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    event(f"{argv[0][:12]} {argv[1][:12] if len(argv) > 1 else ''} exit {result.exit_code}")
    if result.exit_code != 0:
        first = (result.stderr or result.stdout).strip().splitlines()
        assert first, f"{argv} failed without a word"
        said = first[0].lstrip("╭─ ").strip()
        assert said.startswith(("error:", "refused:", "Usage:", "Error", "loaded:")), (argv, first[:3])
        assert digest(url) == before
