"""Datamatrix INS payload (ins.md §11) and symbol."""

from __future__ import annotations

import datetime as dt

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from ris.identity import datamatrix
from ris.identity.datamatrix import GS, HEADER, DatamatrixError, payload

LOVELACE = dict(
    matricule="185057512345673",
    oid="1.2.250.1.213.1.4.8",
    birth_given_names="ADA",
    birth_name="LOVELACE",
    sex="F",
    birth_date=dt.date(1815, 12, 10),
    birth_place_code="99100",
)


def test_ins_md_example_byte_for_byte() -> None:
    expected = (
        "IS010000000000000000000000S1185057512345673S21.2.250.1.213.1.4.8\x1dS3ADA\x1dS4LOVELACE\x1d"
        "S5FS610-12-1815S799100"
    )
    assert payload(**LOVELACE) == expected
    assert len(expected) == 104


def test_oid_of_maximum_length_takes_no_separator() -> None:
    text = payload(**{**LOVELACE, "oid": "1.2.250.1.213.1.4.10"})  # exactly 20 characters
    assert "S21.2.250.1.213.1.4.10S3ADA" in text


def test_without_birth_place_the_date_is_last() -> None:
    text = payload(**{**LOVELACE, "birth_place_code": None})
    assert text.endswith("S5FS610-12-1815")
    assert "S7" not in text


def test_traits_are_upper_case_without_diacritics() -> None:
    text = payload(**{**LOVELACE, "birth_given_names": "Zoé  Hélène-Œdipe", "birth_name": "Lefèvre d'Aç"})
    assert f"S3ZOE HELENE-OEDIPE{GS}S4LEFEVRE D'AC{GS}" in text


def test_a_name_of_maximum_length_takes_no_separator() -> None:
    text = payload(**{**LOVELACE, "birth_name": "A" * 100})
    assert f"S4{'A' * 100}S5F" in text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matricule": "18505751234567"}, "S1"),
        ({"matricule": "1850575123456X3"}, "S1"),
        ({"oid": "1.2.250.1.213.1.4.2"}, "S2"),
        ({"birth_given_names": ""}, "S3"),
        ({"birth_name": "B" * 101}, "S4"),
        ({"birth_name": "O'BRIEN 2"}, "S4"),
        ({"sex": "U"}, "S5"),
        ({"birth_place_code": "9910"}, "S7"),
    ],
)
def test_bad_traits_are_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(DatamatrixError, match=f"field {field}"):
        payload(**{**LOVELACE, **change})


names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ -'", min_size=1, max_size=100).filter(
    lambda s: s.strip() and s.strip()[0].isalpha() and len(" ".join(s.split())) == len(s)
)


@given(given_names=names, family=names, place=st.one_of(st.none(), st.from_regex(r"\A\d{5}\Z")))
def test_fields_parse_back_by_the_separator_rules(given_names: str, family: str, place: str | None) -> None:
    text = payload(
        **{**LOVELACE, "birth_given_names": given_names, "birth_name": family, "birth_place_code": place}
    )
    assert text.startswith(HEADER)
    rest = text[len(HEADER) :]
    fields: dict[str, str] = {}
    for ident, max_len, fixed in (
        ("S1", 15, True),
        ("S2", 20, False),
        ("S3", 100, False),
        ("S4", 100, False),
        ("S5", 1, True),
        ("S6", 10, True),
        ("S7", 5, True),
    ):
        if not rest:
            break
        assert rest.startswith(ident)
        rest = rest[2:]
        if fixed:
            fields[ident], rest = rest[:max_len], rest[max_len:]
        else:
            end = rest.find(GS)
            end = max_len if end == -1 or end > max_len else end
            fields[ident], rest = rest[:end], rest[end:].removeprefix(GS)
    assert fields["S3"] == given_names and fields["S4"] == family
    assert fields.get("S7") == place
    assert rest == ""


def test_symbol_is_square_opaque_and_decodes_to_the_payload() -> None:
    text = payload(**LOVELACE)
    image = datamatrix.encode(text)
    assert image.mode == "RGB" and image.width == image.height
    assert datamatrix.decode(image) == text.encode("ascii")
    read = zxingcpp.read_barcodes(image)
    assert [r.bytes for r in read] == [text.encode("ascii")]
    assert read[0].format == zxingcpp.BarcodeFormat.DataMatrix
