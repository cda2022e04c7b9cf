"""ER7 escaping and reading (ris/hl7v2/er7.py), and the values written from Python (datatypes.py)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ris.hl7v2.datatypes import dtm, yes_no
from ris.hl7v2.er7 import Segment, escape, unescape

# What str.splitlines() breaks on: CR, LF, and among others 0x0B / 0x1C, the MLLP block characters.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
one_line = st.text(alphabet=st.characters(exclude_characters=LINE_BREAKS))


@given(one_line)
def test_unescape_undoes_escape(text: str) -> None:
    assert unescape(escape(text)) == text


@given(st.text())
def test_escaped_text_holds_no_delimiter_nor_line_break(text: str) -> None:
    escaped = escape(text)
    assert not set("|^~&" + LINE_BREAKS) & set(escaped.replace("\\F\\", "").replace("\\S\\", ""))


def test_a_line_break_or_an_mllp_block_character_becomes_a_space() -> None:
    assert escape("ligne 1\r\nligne 2\x1cfin") == "ligne 1 ligne 2 fin"


def test_escape_sequences_of_every_delimiter() -> None:
    assert escape("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert unescape("\\E\\F\\E\\") == "\\F\\"  # one pass: an escaped backslash starts nothing


def test_segment_numbers_fields_as_hl7_does() -> None:
    msh = Segment("MSH|^~\\&|APP|FAC|||20260101||ACK^T02^ACK|42")
    err = Segment("ERR||OBX^1^5|102^Data type error^HL70357|E")
    assert (msh.field(3), msh.field(10), msh.component(9, 2), msh.field(30)) == ("APP", "42", "T02", "")
    assert (err.field(2), err.component(3, 2), err.component(3, 9)) == ("OBX^1^5", "Data type error", "")


def test_dtm_is_local_time_to_the_second() -> None:
    winter = dt.datetime(2026, 1, 15, 8, 30, 5, tzinfo=dt.UTC)
    assert dtm(winter, "Europe/Paris") == "20260115093005"
    assert dtm(winter.replace(tzinfo=None), "UTC") == "20260115083005"  # naive means UTC
    assert (yes_no(True), yes_no(False)) == ("Y", "N")
