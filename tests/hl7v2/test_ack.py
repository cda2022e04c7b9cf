"""One ACK builder (ris/hl7v2/ack_writer.py) and the ACK reader (ack_reader.py), against the ANS examples."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from ris.hl7v2.ack_reader import AckFormatError, parse_ack
from ris.hl7v2.ack_writer import Party, Problem, Received, build_ack, error_location
from ris.hl7v2.er7 import Segment, segments
from tests.hl7.conftest import EXAMPLES, read_example

NOW = dt.datetime(2026, 3, 6, 10, 11, 54, tzinfo=dt.UTC)
CDA_V2 = f"{EXAMPLES}/Vague_2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1"
ORU_V1 = f"{EXAMPLES}/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission_initiale_ORU"
LPS = f"{EXAMPLES}/Vague_2/Trans_LPS_CDA_MSSanté/TRANSMISSION_LPS_DOC_CDA_COURRIEL_FROM_MSSANTE_V1.1"
# (message, the PFI's ACK to it) in the ANS examples
PAIRS = [
    (
        f"{CDA_V2}/MDM/Remplacement_MDM/message_MDM_CR_Radio_RPLC_N1.er7",
        f"{CDA_V2}/MDM/Remplacement_MDM/ack.er7",
    ),
    (f"{ORU_V1}/message_ORU_CR_Bio_INIT_N1_N3.hl7", f"{ORU_V1}/ack.hl7"),
    (
        f"{LPS}/Transmission_initiale_MDM/message_MDM__LPS_MSS_CR_Radio_INIT_N1.er7",
        f"{LPS}/Transmission_initiale_MDM/ack.er7",
    ),
]
# The deletion's ACK names PFI-X where its message names PFI-Y: read, not compared.
ANS_ACKS = [ack for _, ack in PAIRS] + [f"{CDA_V2}/MDM/Suppression_MDM/ack.er7"]
ORIGINAL = Segment("MSH|^~\\&|GAM|CHU-X|RIS|CIM|20240306111154||ADT^A28^ADT_A05|1001|T|2.5^FRA^2.11")


def ack(code: str, problem: Problem | None = None, *, version: str = "2.5") -> str:
    return build_ack(code, Received.read(ORIGINAL), version=version, now=NOW, tz="UTC", problem=problem)


def strict(er7: str) -> None:
    assert parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()


def test_aa_mirrors_the_received_msh() -> None:
    text = ack("AA")
    msh, msa = segments(text)
    assert text.endswith("\r") and "ERR" not in text
    assert [msh.field(n) for n in (3, 4, 5, 6, 7, 9, 11, 12)] == [
        "RIS",
        "CIM",
        "GAM",
        "CHU-X",
        "20260306101154",
        "ACK^A28^ACK",
        "T",
        "2.5",
    ]
    assert len(msh.field(10)) == 20 and (msa.field(1), msa.field(2)) == ("AA", "1001")


def test_a_configured_sender_is_escaped_and_mirrored_values_are_not() -> None:
    received = Received.read(Segment("MSH|^~\\&|GAM^1.2.3^ISO|CHU-X|RIS|CIM|1||ZAM^Z01^ZAM_Z01|7|P|2.6"))
    text = build_ack("AA", received, version="2.6", now=NOW, tz="UTC", sender=Party("RIS|X", "750000001"))
    assert text.startswith("MSH|^~\\&|RIS\\F\\X|750000001|GAM^1.2.3^ISO|CHU-X|")


@pytest.mark.parametrize(
    ("code", "problem", "err"),
    [
        (
            "AE",
            Problem("103", "INS assigning authority '9.9' is not an INS OID", "PID-3.4"),
            "ERR||PID^1^3^1^4|103^Table value not found^HL70357|E||||INS assigning authority '9.9' is not "
            "an INS OID",
        ),
        (
            "AR",
            Problem("201", "unsupported event ADT^A99", "MSH-9"),
            "ERR||MSH^1^9|201^Unsupported event code^HL70357|E||||unsupported event ADT\\S\\A99",
        ),
        (
            "AE",
            Problem("204", "OBX-4: no message sent to the PFI has this MSH-10"),
            "ERR|||204^Unknown key identifier^HL70357|E||||OBX-4: no message sent to the PFI has this MSH-10",
        ),
    ],
)
@pytest.mark.parametrize("version", ["2.5", "2.6"])
def test_ae_and_ar_say_why_in_err(code: str, problem: Problem, err: str, version: str) -> None:
    text = ack(code, problem, version=version)
    assert text.split("\r")[1:] == [f"MSA|{code}|1001", err, ""]
    strict(text)  # valid HL7 for its version, errors included
    read = parse_ack(text)
    assert (read.code, read.control_id, read.accepted) == (code, "1001", False)
    assert [(e.condition, e.severity) for e in read.errors] == [(problem.condition, "E")]


def test_error_locations() -> None:
    locations = {"PID-3.4": "PID^1^3^1^4", "PID-7": "PID^1^7", "MSH": "MSH", "": ""}
    assert {given: error_location(given) for given in locations} == locations


def test_an_ack_to_no_readable_message_names_us_and_echoes_nothing() -> None:
    problem = Problem("100", "the message does not start with an MSH segment", "MSH")
    text = build_ack(
        "AR", Received(), version="2.5", now=NOW, tz="UTC", sender=Party("RIS", ""), problem=problem
    )
    assert text.startswith("MSH|^~\\&|RIS||||20260306101154||ACK^^ACK|") and "\rMSA|AR|\r" in text


@pytest.mark.parametrize("path", ANS_ACKS)
def test_reads_the_ans_acks(shared: Path, path: str) -> None:
    read = parse_ack(read_example(shared, path))
    assert (read.code, read.control_id, read.errors) == ("AA", "015", ())
    assert read.accepted and not read.rejected


@pytest.mark.parametrize(("message", "expected"), PAIRS)
def test_our_ack_to_an_ans_message_is_the_ans_ack(shared: Path, message: str, expected: str) -> None:
    received = segments(read_example(shared, message))[0]
    ours = build_ack("AA", Received.read(received), version=received.field(12), now=NOW, tz="UTC")
    theirs = read_example(shared, expected)

    def aside_7_and_10(er7: str) -> list[list[str]]:  # the time and each side's own MSH-10
        return [
            s.parts[:6] + s.parts[7:9] + s.parts[10:] if s.name == "MSH" else s.parts for s in segments(er7)
        ]

    assert aside_7_and_10(ours) == aside_7_and_10(theirs)
    strict(ours)


@pytest.mark.parametrize("text", ["", "MSA|AA|1", "MSH|^~\\&|A|B\rEVN||1", "MSH|^~\\&|A|B\rMSA||1"])
def test_what_is_not_an_ack_is_refused(text: str) -> None:
    with pytest.raises(AckFormatError):
        parse_ack(text)
