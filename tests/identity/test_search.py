"""Rule 17 anteriority search (RIS.INS.07-10)."""

from __future__ import annotations

import datetime as dt

import pytest

from ris.identity.errors import IdentityRuleError
from ris.identity.registry import create_identity
from ris.identity.search import search_by_ins, search_by_traits
from tests.identity.helpers import CLERK, audits
from tests.identity.test_registry import qualified

DOB = dt.date(1979, 3, 28)


@pytest.fixture
def people(session):
    a = create_identity(
        session,
        CLERK,
        birth_name="PAT-TROIS",
        first_birth_given_name="DOMINIQUE",
        birth_date=DOB,
        sex="F",
        birth_place_code="63220",
        birth_given_names="DOMINIQUE MARIE-LOUISE",
        used_name="D'ARC",
        used_given_name="DOMI",
    )
    b = create_identity(
        session,
        CLERK,
        birth_name="MARTIN",
        first_birth_given_name="CHLOE",
        birth_date=DOB,
        sex="F",
        birth_place_code="75056",
    )
    c = create_identity(
        session,
        CLERK,
        birth_name="PATRICK",
        first_birth_given_name="JEAN",
        birth_date=dt.date(1980, 1, 1),
        sex="M",
        birth_place_code="75056",
    )
    return a, b, c


def test_birth_date_alone(session, people) -> None:
    a, b, _ = people
    assert search_by_traits(session, CLERK, DOB) == [a, b]


@pytest.mark.parametrize("typed", ["pat", "Pat-T", "PATTR", "pat trois", "d'a", "da", "Dárc"])
def test_birth_or_used_name_ignoring_accents_apostrophes_hyphens_case(session, people, typed) -> None:
    assert search_by_traits(session, CLERK, DOB, typed) == [people[0]]


@pytest.mark.parametrize("typed", ["marie", "Marie-Lou", "MARIELOUISE", "domi", "dominiqué"])
def test_all_given_name_fields_without_distinction(session, people, typed) -> None:
    assert search_by_traits(session, CLERK, DOB, typed) == [people[0]]


def test_search_is_audited(session, people) -> None:
    search_by_traits(session, CLERK, DOB, "chl")
    assert audits(session, people[1], "identity.search")[0].detail == {
        "criteria": "birth_date+name",
        "results": 1,
    }


def test_by_ins_requires_15_characters_and_a_good_key(session) -> None:
    p = qualified(session)
    with pytest.raises(IdentityRuleError, match="15 characters"):
        search_by_ins(session, CLERK, "297022A020778")
    with pytest.raises(IdentityRuleError, match="does not match"):
        search_by_ins(session, CLERK, "297022A02077879")
    assert search_by_ins(session, CLERK, "297022a02077878") == [p]
