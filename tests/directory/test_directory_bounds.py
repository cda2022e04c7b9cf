"""The directory import holds no line whole: a line longer than the reader's maximum is skipped to its end
and refused with its number, the import going on (an endless header refuses the file in one line), even
under a memory limit smaller than the line; a value holding a control character refuses its line."""

from __future__ import annotations

import io
import resource
import subprocess
import zipfile
from pathlib import Path

import pytest

from ris.directory import extraction
from ris.directory.importer import import_persons
from ris.directory.synthetic import SAMPLE_PERSONS
from tests.cli_process import RIS, isolated_env
from tests.conftest import ROOT

ADMIN = "10001234567"  # the demo's administrator (acting_users)
GIB = 1 << 30
MEMORY_LIMIT = GIB  # address space of the `ris` process


def _zip_with(path: Path, head: bytes, endless: int, tail: bytes) -> Path:
    """A zip like the published ones holding `head`, then one line of `endless` bytes, then `tail`;
    written in pieces (it compresses to a few MB)."""
    piece = b"A" * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("PS_LibreAcces_Personne_activite.txt", "w", force_zip64=True) as member,
    ):
        member.write(head)
        for _ in range(endless // len(piece)):
            member.write(piece)
        member.write(b"\n" + tail)
    return path


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _import(tmp_path: Path, db_url: str, archive: Path) -> subprocess.CompletedProcess[str]:
    env = isolated_env(tmp_path, RIS_DATABASE_URL=db_url)
    return subprocess.run(
        [*RIS, "directory", "import", str(archive), "--by", ADMIN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limited,
    )


@pytest.mark.slow  # 1.5 GiB inflated twice
def test_an_endless_line_under_a_memory_limit_smaller_than_it_ends_in_one_line(
    acting_users, db_url: str, tmp_path: Path
) -> None:
    endless = _zip_with(tmp_path / "endless.zip", b"", 3 * GIB // 2, b"")
    result = _import(tmp_path, db_url, endless)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (  # after the progress bar's label
        "error: line 1: longer than 64 kB, not a « PS_LibreAcces_Personne_activite » extraction"
    )
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1

    sample = SAMPLE_PERSONS.read_bytes().splitlines(keepends=True)
    header, rest = sample[0], b"".join(sample[1:])
    goes_on = _zip_with(tmp_path / "one-long-line.zip", header, 3 * GIB // 2, rest)
    result = _import(tmp_path, db_url, goes_on)
    assert result.returncode == 2, result.stderr[-2000:]  # imported, with a refused line
    assert "created 5, updated 0, unchanged 0, refused 1" in result.stdout
    assert "line 2: longer than 64 kB: not a line of a « PS_LibreAcces_Personne_activite »" in result.stdout


def test_a_long_line_is_refused_with_its_number_and_the_import_goes_on(session) -> None:
    lines = SAMPLE_PERSONS.read_bytes().splitlines(keepends=True)
    lines.insert(2, b"x" * (extraction.MAX_LINE * 3) + b"\n")  # line 3
    summary = import_persons(session, io.BytesIO(b"".join(lines)), what="test")
    assert summary.created == 5 and [n for n, _ in summary.refused] == [3]
    assert summary.refused[0][1].startswith("longer than 64 kB: not a line of")


def test_a_control_character_in_a_value_refuses_its_line(session) -> None:
    lines = SAMPLE_PERSONS.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"ESSAI-FICTIF", b"ESSAI\rFICTIF", 1)
    summary = import_persons(session, io.BytesIO(b"".join(lines)), what="test")
    [(number, reason)] = summary.refused
    assert number == 4 and reason.startswith("« Nom d'exercice »: holds a control character (U+000D)")
