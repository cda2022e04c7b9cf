"""NIR / NIA key (ins.md §5): known matricules and arithmetic properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ris.identity.errors import IdentityRuleError
from ris.identity.nir import OID_NIA, OID_NIR, check_matricule, matricule_problem, nature, nir_key, with_key

KNOWN = [
    ("297022A020778", 78),  # ADRTROIS DOMINIQUE, Corsica 2A
    ("160012B020777", 13),  # ADRTROIS TOUSSAINT, Corsica 2B
    ("1090763220834", 89),  # ECETINSI PIERRE-ALAIN
    ("1090763220888", 35),  # NIA, CNDA test 2.05
    ("2790351215189", 89),  # PAT-TROIS DOMINIQUE
    ("2751263220749", 74),  # ADRUN ZOE
    ("2360663220836", 56),  # TCHITCHI
]

digits = st.text("0123456789", min_size=1, max_size=1)
n13 = st.builds(
    lambda sex, rest, dep, tail: sex + rest + dep + tail,
    st.sampled_from("12"),
    st.text("0123456789", min_size=4, max_size=4),
    st.sampled_from(["2A", "2B", "75", "63", "99", "97"]),
    st.text("0123456789", min_size=6, max_size=6),
)


@pytest.mark.parametrize(("n13_", "key"), KNOWN)
def test_known_keys(n13_: str, key: int) -> None:
    assert nir_key(n13_) == key
    assert matricule_problem(f"{n13_}{key:02d}") is None


def test_corsica_is_read_as_19_and_18() -> None:
    assert nir_key("297022A020778") == 97 - int("2970219020778") % 97
    assert nir_key("160012B020777") == 97 - int("1600118020777") % 97


@given(n13)
def test_key_is_between_1_and_97_and_verifies(value: str) -> None:
    key = nir_key(value)
    assert 1 <= key <= 97
    assert matricule_problem(with_key(value)) is None


@given(n13, st.integers(0, 12), st.integers(1, 9))
def test_any_single_digit_change_is_detected(value: str, pos: int, delta: int) -> None:
    full = with_key(value)
    if not full[pos].isdigit() or (pos in (5, 6) and full[5:7] in ("2A", "2B")):
        return
    changed = full[:pos] + str((int(full[pos]) + delta) % 10) + full[pos + 1 :]
    assert matricule_problem(changed) is not None


@given(n13, st.integers(0, 11))
def test_adjacent_transposition_is_detected(value: str, pos: int) -> None:
    full = with_key(value)
    a, b = full[pos], full[pos + 1]
    if a == b or not (a.isdigit() and b.isdigit()):
        return
    swapped = full[:pos] + b + a + full[pos + 2 :]
    assert matricule_problem(swapped) is not None


@given(n13, st.integers(0, 99))
def test_wrong_key_is_refused_with_the_expected_one(value: str, key: int) -> None:
    expected = nir_key(value)
    problem = matricule_problem(f"{value}{key:02d}")
    assert (problem is None) == (key == expected)
    if problem:
        assert f"expected {expected:02d}" in problem


@pytest.mark.parametrize(
    ("matricule", "words"),
    [
        ("27903512151898", "exactly 15"),
        ("2790351215189890", "exactly 15"),
        ("2790X5121518989", "positions 1-13"),
        ("279032C21518989", "positions 1-13"),
        ("27903512151898A", "two digits"),
        ("181036322045660", "does not match"),  # HERMANN GATIEN: public test data with a bad key
    ],
)
def test_malformed_matricules_say_why(matricule: str, words: str) -> None:
    with pytest.raises(IdentityRuleError) as err:
        check_matricule(matricule)
    assert words in str(err.value)
    assert "INS rule 17" in str(err.value)
    assert str(err.value).startswith("ins_matricule:")


def test_nature_is_told_by_the_oid() -> None:
    assert nature(OID_NIR) == "NIR"
    assert nature(OID_NIA) == "NIA"
    with pytest.raises(IdentityRuleError):
        nature("1.2.250.1.213.1.4.2")  # legacy INS-C
