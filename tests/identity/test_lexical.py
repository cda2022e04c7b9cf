"""Lexical rules of the INSi profile and the rule-17 search key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ris.identity.errors import IdentityRuleError
from ris.identity.lexical import NAME_RE, check_name, search_key, to_insi_form


@pytest.mark.parametrize(
    "name", ["PAT-TROIS", "DE VINCI", "D'ARTAGNAN", "JEAN--PIERRE", "ADRTROIS", "A" * 100]
)
def test_valid_names(name: str) -> None:
    assert check_name("birth_name", name) == name


@pytest.mark.parametrize(
    "name",
    [
        "Dupont",
        "LEFÈVRE",
        "FRANÇOIS",
        " DUPONT",
        "-DUPONT",
        "DU  PONT",
        "DU''PONT",
        "DU---PONT",
        "DUPONT2",
        "A" * 101,
    ],
)
def test_refused_names_name_the_field(name: str) -> None:
    with pytest.raises(IdentityRuleError) as err:
        check_name("birth_name", name)
    assert str(err.value).startswith("birth_name:")


def test_empty_name_refused() -> None:
    with pytest.raises(IdentityRuleError, match="must not be empty"):
        check_name("birth_name", "  ")


def test_insi_form_removes_diacritics_and_ligatures() -> None:
    assert to_insi_form("Lefèvre  d’Œuf") == "LEFEVRE D'OEUF"
    assert check_name("birth_name", to_insi_form("François-Noël"))


@given(st.text(alphabet="abcdeéèçàïôœ' -ABC", min_size=1, max_size=30))
def test_search_key_ignores_case_accents_apostrophes_hyphens(value: str) -> None:
    key = search_key(value)
    assert key == key.upper()
    assert not set(key) & set("'- ")
    assert search_key(value.upper()) == key == search_key(value.replace("-", "--"))


def test_search_key_examples() -> None:
    assert search_key("Pat-Trois") == search_key("PAT TROIS") == search_key("pattrois") == "PATTROIS"
    assert search_key("d'Ârtagnan") == "DARTAGNAN"
    assert NAME_RE.match("PAT-TROIS")
