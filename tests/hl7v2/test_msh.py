"""One MSH builder (ris/hl7v2/msh.py) and the MSH-10 minter (control_id.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_segment

from ris.hl7v2.control_id import max_length, new_control_id
from ris.hl7v2.msh import build_msh

NOW = dt.datetime(2026, 3, 6, 10, 11, 54, tzinfo=dt.UTC)


def msh(**overrides: str) -> str:
    values = dict(
        sending_application="RIS-Y",
        sending_facility="Organisation-Y",
        receiving_application="PFI-Y",
        receiving_facility="Organisation-Y",
        when=NOW,
        tz="Europe/Paris",
        message_type="MDM^T02^MDM_T02",
        control_id="015",
        processing_id="P",
        version="2.6",
    )
    return build_msh(**values | overrides)


def test_msh_of_the_ans_mdm_example() -> None:
    assert msh(profile="2.1^CISIS_CDA_HL7_V2") == (
        "MSH|^~\\&|RIS-Y|Organisation-Y|PFI-Y|Organisation-Y|20260306111154||MDM^T02^MDM_T02|015|P|2.6"
        "|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2"
    )


def test_empty_trailing_fields_are_left_out() -> None:
    assert msh().endswith("|2.6|||||FRA|UNICODE UTF-8")
    assert msh(language="FR").endswith("|FRA|UNICODE UTF-8|FR")


def test_values_land_in_their_fields_for_hl7apy() -> None:
    line = msh(version="2.5^FRA^2.11", message_type="ADT^A31^ADT_A05", language="FR", profile="2.11^X")
    segment = parse_segment(line, version="2.5", validation_level=VALIDATION_LEVEL.STRICT)
    fields = {n: getattr(segment, f"msh_{n}").to_er7() for n in (3, 6, 7, 9, 10, 11, 12, 17, 18, 19, 21)}
    assert fields == {
        3: "RIS-Y",
        6: "Organisation-Y",
        7: "20260306111154",
        9: "ADT^A31^ADT_A05",
        10: "015",
        11: "P",
        12: "2.5^FRA^2.11",
        17: "FRA",
        18: "UNICODE UTF-8",
        19: "FR",
        21: "2.11^X",
    }


@pytest.mark.parametrize(
    ("version", "length"),
    [
        ("2.5", 20),
        ("2.5.1", 20),
        ("2.5^FRA^2.11", 20),  # PAM-FR
        ("2.6", 20),
        ("2.7", 199),
        ("2.8.2", 199),
        ("", 20),  # an ACK to a message without MSH-12
        ("garbage", 20),
    ],
)
def test_msh_10_length_per_version(version: str, length: int) -> None:
    assert max_length(version) == length
    minted = new_control_id(version)
    assert len(minted) == min(length, 32) and int(minted, 16) >= 0  # hex digits of a UUID


def test_minted_control_ids_differ() -> None:
    assert len({new_control_id("2.5") for _ in range(1000)}) == 1000
