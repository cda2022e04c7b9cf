"""The two public extraction files of annuaire.sante.fr, read line by line (DSFT « Fichiers d'extraction des
données en libre accès » [ANN1]): UTF-8, `|`-separated, one header line, a trailing `|` on each line.

Columns are found by their header name, so a column the ANS adds or moves changes nothing; a column the
engine needs and the header lacks refuses the whole file before anything is stored. A line is refused with
its number and the rule it breaks (a value holding a control character among them: names and addresses
end in mail headers and HL7 fields); the lines after it go on. Memory stays bounded whatever the file: a
line longer than `MAX_LINE` is never held, only skipped to its end and refused (a header that long
refuses the file).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ris.identity.lexical import strip_diacritics
from ris.text_rules import line_problem

# « PS_LibreAcces_Personne_activite »: one line per professional x activity.
PS_ID_TYPE = "Type d'identifiant PP"
PS_ID = "Identifiant PP"
PS_COLUMNS = {
    "civility": "Code civilité d'exercice",
    "family": "Nom d'exercice",
    "given": "Prénom d'exercice",
    "profession_code": "Code profession",
    "profession": "Libellé profession",
    "specialty_code": "Code savoir-faire",
    "specialty": "Libellé savoir-faire",
}
STRUCTURE_COLUMNS = {
    "mode": "Code mode exercice",
    "structure_id": "Identifiant technique de la structure",
    "name": "Raison sociale site",
    "brand": "Enseigne commerciale site",
    "finess": "Numéro FINESS site",
    "siret": "Numéro SIRET site",
    "street_number": "Numéro Voie (coord. structure)",
    "street_type": "Libellé type de voie (coord. structure)",
    "street": "Libellé Voie (coord. structure)",
    "postal_code": "Code postal (coord. structure)",
    "city": "Libellé commune (coord. structure)",
    "phone": "Téléphone (coord. structure)",
}
# The MSSanté address extraction: one line per mailbox.
MSS_COLUMNS = {
    "kind": "Type de BAL",
    "address": "Adresse BAL",
    "id_type": "Type d'identifiant PP",
    "rpps": "Identifiant PP",
    "organisation": "Raison sociale structure BAL",
    "service": "Service de rattachement",
}
RPPS_ID_TYPE = "8"  # « Type d'identifiant PP »: 8 = RPPS, 0 = ADELI (not a key of the engine)
RPPS_RE = re.compile(r"^\d{11}$")
ADDRESS_RE = re.compile(r"^[^@\s|]{1,64}@[^@\s|]+\.[^@\s|]+$")
MAILBOX_KINDS = {"PER", "ORG", "APP", "CAB"}
MAX_LENGTHS = {"family": 100, "given": 100, "profession": 100, "specialty": 200, "civility": 16}
MAX_LINE = 64 * 1024  # bytes; the extractions' lines are a few hundred


class ExtractionRefused(ValueError):
    """The file as a whole cannot be read as this extraction (header, encoding)."""


class LineRefused(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, the header is line 1
    fields: dict[str, str] | None  # None: refused, see `error`; {}: nothing to import (header, blank)
    error: str | None
    size: int  # bytes read, for the progress bar


def search_key(value: str | None) -> str | None:
    """Upper case, no diacritics, apostrophes and hyphens as spaces: how names are compared in searches."""
    if not value:
        return None
    return " ".join(re.sub(r"['’\-]+", " ", strip_diacritics(value)).upper().split()) or None


def _header(raw: bytes, needed: list[str], what: str) -> dict[str, int]:
    try:
        names = raw.decode("utf-8-sig").rstrip("\r\n").split("|")
    except UnicodeDecodeError as exc:
        raise ExtractionRefused(f"line 1: the header is not UTF-8 ({exc.reason})") from exc
    index = {name.strip(): i for i, name in enumerate(names) if name.strip()}
    missing = [name for name in needed if name not in index]
    if missing:
        raise ExtractionRefused(f"line 1: not {what}: column « {missing[0]} » is missing from the header")
    return index


def _bounded_lines(stream: BinaryIO) -> Iterator[tuple[bytes | None, int]]:
    """(line, bytes read) of the stream; None for a line longer than MAX_LINE, read to its end in pieces
    and never held whole."""
    while raw := stream.readline(MAX_LINE + 1):
        if raw.endswith(b"\n") or len(raw) <= MAX_LINE:
            yield raw, len(raw)
            continue
        size = len(raw)
        while piece := stream.readline(MAX_LINE):
            size += len(piece)
            if piece.endswith(b"\n"):
                break
        yield None, size


def read_lines(stream: BinaryIO, columns: dict[str, str], what: str) -> Iterator[Line]:
    """The file's lines as {field: value} (values stripped, empty as ''), refused lines with their reason."""
    lines = _bounded_lines(stream)
    header, size = next(lines, (b"", 0))
    if header is None:
        raise ExtractionRefused(f"line 1: longer than {MAX_LINE // 1024} kB, not {what}")
    if not header:
        raise ExtractionRefused(f"line 1: empty file, not {what}")
    index = _header(header, list(columns.values()), what)
    width = max(index.values()) + 1
    yield Line(1, {}, None, size)  # nothing to import; counts for the progress bar
    for number, (raw, size) in enumerate(lines, start=2):
        if raw is None:
            yield Line(number, None, f"longer than {MAX_LINE // 1024} kB: not a line of {what}", size)
            continue
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield Line(number, None, f"not UTF-8 ({exc.reason} at byte {exc.start})", len(raw))
            continue
        if not text.strip():
            yield Line(number, {}, None, len(raw))
            continue
        values = text.split("|")
        if len(values) < width:
            yield Line(number, None, f"{len(values)} fields, the header has {width}", len(raw))
            continue
        fields = {key: values[index[col]].strip() for key, col in columns.items()}
        problem = next(((columns[k], p) for k, v in fields.items() if (p := line_problem(v))), None)
        if problem:
            yield Line(number, None, f"« {problem[0]} »: {problem[1]}", len(raw))
            continue
        yield Line(number, fields, None, len(raw))


def check_rpps(value: str, column: str = PS_ID) -> str:
    if not RPPS_RE.match(value):
        raise LineRefused(f"« {column} » {value!r}: an RPPS number is 11 digits")
    return value


def check_lengths(fields: dict[str, str]) -> None:
    for key, limit in MAX_LENGTHS.items():
        if len(fields.get(key, "")) > limit:
            raise LineRefused(f"« {PS_COLUMNS[key]} »: at most {limit} characters")


@contextmanager
def open_extraction(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The extraction as a byte stream and its size; a .zip as annuaire.sante.fr publishes it is read
    from its single .txt member without unpacking it to disk."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if m.filename.lower().endswith((".txt", ".csv"))]
                if len(members) != 1:
                    raise ExtractionRefused(f"{path.name}: the archive must hold one .txt extraction")
                with archive.open(members[0]) as stream:
                    yield stream, members[0].file_size
            return
        with path.open("rb") as stream:
            yield stream, path.stat().st_size
    except OSError as exc:
        raise ExtractionRefused(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from exc
