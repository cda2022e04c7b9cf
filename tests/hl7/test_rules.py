"""Pure rules: the MSSanté matrix, ER7 escaping, ACK and ZAM reading (ANS examples)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ris.channels.hl7.matrix import matrix_row, matrix_violation
from ris.channels.hl7.receipts import ZamFormatError, outcome, parse_zam
from ris.hl7v2.ack_reader import parse_ack
from ris.hl7v2.er7 import escape, segments, unescape
from ris.lifecycle.routing import DistributionFlags
from ris.site.settings import SiteSettings
from ris.store.models import DeliveryStatus
from tests.hl7.conftest import MDM_DIR, ZAM_DIR, read_example

flags_strategy = st.builds(DistributionFlags, *[st.booleans()] * 8)


def all_flags() -> list[DistributionFlags]:
    return [DistributionFlags(*values) for values in itertools.product([False, True], repeat=8)]


def test_matrix_accepts_exactly_its_24_mssante_combinations() -> None:
    with_mss = [f for f in all_flags() if f.dest_mss_ps or f.dest_mss_patient]
    accepted = [f for f in with_mss if matrix_violation(f) is None]
    assert (len(with_mss), len(accepted)) == (192, 24)  # rows 1, 2, 3: 8 combinations each, disjoint


@given(flags_strategy)
def test_matrix_business_rules(flags: DistributionFlags) -> None:
    violation = matrix_violation(flags)
    if not (flags.dest_mss_ps or flags.dest_mss_patient):
        assert violation is None  # DMP-only messages are outside the matrix's scope
    if flags.dest_mss_patient and flags.invisible_patient:
        assert violation  # a document hidden from the patient is never mailed to the patient
    if flags.dest_mss_ps and flags.mask_ps:
        assert violation  # nor a document masked to professionals to a professional
    if violation:
        assert "outside the MSSanté matrix" in violation


def test_combinations_agreed_with_the_pfi_extend_the_matrix() -> None:
    """The site's default agreements accept what the ANS examples send; anything else is still refused."""
    agreed = SiteSettings().hl7.agreed_combinations
    exemple_1 = DistributionFlags(True, False, False, False, False, True, False, True)
    ps_only_unqualified = DistributionFlags(False, False, False, False, False, False, True, False)
    hidden_from_representatives_but_mailed = DistributionFlags(
        False, False, True, False, False, True, True, True
    )
    for flags in (exemple_1, ps_only_unqualified):
        assert matrix_violation(flags) is not None
        assert matrix_violation(flags, agreed) is None
    assert "agreed with the PFI" in matrix_violation(hidden_from_representatives_but_mailed, agreed)
    assert matrix_violation(ps_only_unqualified, ["NN****YY"]) is not None  # agreements are exact


def test_agreed_combinations_are_checked_when_saved() -> None:
    with pytest.raises(ValidationError):
        SiteSettings(hl7={"agreed_combinations": ["NN**YN"]})


def test_matrix_rows_of_the_ig() -> None:
    assert matrix_row(("N", "N", "N", "Y", "Y", "Y", "Y", "Y")) == 1
    assert matrix_row(("N", "Y", "N", "N", "N", "N", "Y", "N")) == 2
    assert matrix_row(("Y", "N", "Y", "N", "N", "N", "N", "Y")) == 3
    assert matrix_row(("Y", "N", "N", "N", "N", "Y", "N", "Y")) is None  # IG Exemple 1 (open point)


@given(st.text())
def test_escape_round_trips_and_leaves_no_delimiter(text: str) -> None:
    escaped = escape(text)
    assert not set("|^~&\r\n") & set(escaped.replace("\\F\\", "").replace("\\S\\", ""))
    if text.splitlines() in ([text], []):  # no line break: nothing was turned into a space
        assert unescape(escaped) == text


def test_reads_the_ans_acks(shared: Path) -> None:
    ack = parse_ack(read_example(shared, f"{MDM_DIR}/Remplacement_MDM/ack.er7"))
    assert (ack.code, ack.control_id, ack.accepted, ack.rejected) == ("AA", "015", True, False)
    rejected = parse_ack(
        "MSH|^~\\&|PFI|X|RIS|Y|20240101||ACK^T02^ACK|9|P|2.6\rMSA|AR|015\r"
        "ERR||OBX^1^5|102^Data type error^HL70357|E||||the payload quotes PAT-TROIS"
    )
    assert rejected.rejected and rejected.reason() == "MSA AR: ERR-3 102 Data type error at OBX^1^5"


@pytest.mark.parametrize(
    ("name", "trigger", "positive", "address", "status"),
    [
        ("Message_metier_reception_DMP.hl7", "Z01", False, None, DeliveryStatus.failed),
        (
            "Message_metier_reception_MSS.hl7",
            "Z02",
            True,
            "adam.hoda@test-ci-sis.mssante.fr",
            DeliveryStatus.acknowledged,
        ),
        (
            "Message_metier_lecture_MSS.hl7",
            "Z03",
            True,
            "adam.hoda@test-ci-sis.mssante.fr",
            DeliveryStatus.read,
        ),
    ],
)
def test_reads_the_ans_zam_examples(shared: Path, name, trigger, positive, address, status) -> None:
    receipt = parse_zam(read_example(shared, f"{ZAM_DIR}/{name}"))
    assert (receipt.trigger, receipt.original_control_id, receipt.positive, receipt.address) == (
        trigger,
        "015",
        positive,
        address,
    )
    assert outcome(receipt)[0] is status
    if trigger == "Z01":
        assert receipt.error_codes() == "DMPClosed DMP fermé" and "DMPClosed" in outcome(receipt)[1]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("MSH|^~\\&|A|B|C|D|1||ADT^A01^ADT_A01|1|P|2.5", "MSH-9"),
        ("MSH|^~\\&|A|B|C|D|1||ZAM^Z01^ZAM_Z01|1|P|2.6\rEVN||1", "OBX"),
        (
            "MSH|^~\\&|A|B|C|D|1||ZAM^Z01^ZAM_Z01|1|P|2.6\rOBX|1|CWE|ACK_RECEPTION_DMP^x^AckMetierZAM||Y",
            "OBX-4",
        ),
        (
            "MSH|^~\\&|A|B|C|D|1||ZAM^Z02^ZAM_Z01|1|P|2.6\rOBX|1|CWE|ACK_RECEPTION_MSS^x^AckMetierZAM|k|Y",
            "OBX-5.4",
        ),
    ],
)
def test_malformed_zam_names_the_field(text: str, field: str) -> None:
    with pytest.raises(ZamFormatError, match=field):
        parse_zam(text)


def test_segments_accept_lf_and_crlf() -> None:
    assert [s.name for s in segments("MSH|^~\\&|A\r\nEVN||1\nOBX|1")] == ["MSH", "EVN", "OBX"]
