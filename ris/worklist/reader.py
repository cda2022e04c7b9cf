"""A worklist file read with bounded memory: the JSON object's sections record by record, never more than
one record decoded at once and never a record larger than the site allows (`intake.max_record_kb`),
whatever the file's size or shape.

The records are decoded by the standard library's JSON decoder (`raw_decode`) from a buffer that holds
the record being read and one chunk of what follows it. A first pass (`outline`) reads the whole file
and drops each record once decoded: a file that is not JSON, not a worklist's shape, nested too deep or
holding a record too large is refused before anything is stored. The records are then read again in the
order a load takes them (correspondents, patients, exams, reports), one pass per section unless the file
already gives them in that order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

CHUNK = 64 * 1024  # characters read at a time
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class WorklistUnreadable(ValueError):
    """The file cannot be read as a worklist (not JSON, a record too large or nested too deep): one line
    saying where and why. Nothing is stored."""


class WorklistShape(ValueError):
    """The file is JSON but not a worklist's shape (an unknown section, a section that is not a list): one
    line naming the section. Nothing is stored."""


class _Stream:
    """A text file read chunk by chunk; `buf[pos:]` is what is not consumed yet."""

    def __init__(self, handle: TextIO, max_chars: int) -> None:
        self.handle, self.max_chars = handle, max_chars
        self.buf, self.pos, self.eof = "", 0, False
        self.line = 1  # the line `buf` starts on

    def more(self) -> bool:
        """Read more (at least a chunk, and as much as is buffered: a long record takes few re-reads)."""
        if self.eof:
            return False
        chunk = self.handle.read(max(CHUNK, len(self.buf) - self.pos))
        if not chunk:
            self.eof = True
            return False
        if self.pos:
            self.line += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos :], 0
        self.buf += chunk
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def take(self, expected: str, where: str, what: str) -> None:
        if self.peek() != expected:
            raise self.unreadable(where, f"expected {what}", self.pos)
        self.pos += 1

    def value(self, where: str) -> Any:
        """The next JSON value, decoded; refused when larger than `max_chars` or nested too deep."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._read_on(where):
                    continue
                raise self.unreadable(where, f"not valid JSON: {exc.msg}", exc.pos) from None
            except RecursionError:
                raise WorklistUnreadable(f"{where}: nested too deep for a worklist record") from None
            # A value that ends where the buffer ends (a number) may go on in what is not read yet.
            if end < len(self.buf) or not self._read_on(where):
                self._within_maximum(end - self.pos, where)
                self.pos = end
                return value

    def _read_on(self, where: str) -> bool:
        self._within_maximum(len(self.buf) - self.pos, where)
        return self.more()

    def _within_maximum(self, size: int, where: str) -> None:
        if size > self.max_chars:
            kb = self.max_chars // 1024
            raise WorklistUnreadable(
                f"{where}: a record larger than {kb} kB (site setting intake.max_record_kb)"
            )

    def unreadable(self, where: str, why: str, at: int) -> WorklistUnreadable:
        line = self.line + self.buf.count("\n", 0, at)
        return WorklistUnreadable(f"{where + ': ' if where else ''}{why} (line {line})")


def _walk(stream: _Stream, wanted: str | None) -> Iterator[tuple[str, int, Any]]:
    """(section, index, record) of the file, records of `wanted` only when given (every section's are
    decoded all the same: that is how JSON is skipped), stopping once `wanted` was read; `index` -1 with a
    section's raw value when it is not a list."""
    stream.take("{", "", "a JSON object with lists of records")
    if stream.peek() == "}":
        stream.pos += 1
        return
    seen: set[str] = set()
    while True:
        at = stream.pos
        key = stream.value("a section name")
        if not isinstance(key, str):
            raise stream.unreadable("", "expected a section name", at)
        if key in seen:
            raise WorklistShape(f"{key}: the section is given twice")
        seen.add(key)
        stream.take(":", key, "':' after the section name")
        if stream.peek() != "[":
            yield key, -1, stream.value(key)
        else:
            stream.pos += 1
            index = 0
            while stream.peek() != "]":
                if index:
                    stream.take(",", f"{key}[{index}]", "',' or ']' between records")
                record = stream.value(f"{key}[{index}]")
                if wanted is None or key == wanted:
                    yield key, index, record
                index += 1
            stream.pos += 1
            if key == wanted:
                return
        if stream.peek() == "}":
            stream.pos += 1
            break
        stream.take(",", key, "',' or '}' after a section")
    if stream.peek():
        raise stream.unreadable("", "more data after the worklist's object", stream.pos)


def outline(path: Path, sections: tuple[str, ...], max_chars: int) -> list[str]:
    """Read the whole file once, keeping nothing but its sections with records, in file order;
    WorklistUnreadable or WorklistShape (the first problem) when it cannot be loaded."""
    found: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for section, index, _record in _walk(_Stream(handle, max_chars), None):
            if section not in sections:
                raise WorklistShape(f"{section}: unknown section (expected {', '.join(sections)})")
            if index < 0:
                raise WorklistShape(f"{section}: must be a list of records")
            if index == 0:
                found.append(section)
    return found


def records(
    path: Path, sections: tuple[str, ...], in_file: list[str], max_chars: int
) -> Iterator[tuple[str, int, Any]]:
    """(section, index, record) in the order `sections` gives, one record decoded at a time, of a file
    whose `outline` is `in_file`: one pass when the file gives its sections in that order, else one per
    section."""
    if in_file == [s for s in sections if s in in_file]:
        passes: list[str | None] = [None]
    else:
        passes = [s for s in sections if s in in_file]
    for section in passes:
        with path.open(encoding="utf-8") as handle:
            yield from _walk(_Stream(handle, max_chars), section)
