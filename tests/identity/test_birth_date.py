"""A birth date is plausible for a living patient: not in the future, not before 1880 (worklist and
PAM-FR feed alike)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ris.identity.birth_date import EARLIEST, implausibility

TODAY = dt.date(2026, 11, 28)


@given(st.dates(min_value=EARLIEST, max_value=TODAY))
def test_every_date_from_1880_to_today_is_plausible(day):
    assert implausibility(day, TODAY) is None


@given(st.dates(min_value=TODAY + dt.timedelta(days=1)))
def test_a_date_in_the_future_is_refused(day):
    assert implausibility(day, TODAY) == f"{day.isoformat()} is in the future"


@given(st.dates(max_value=EARLIEST - dt.timedelta(days=1)))
def test_a_date_before_1880_is_refused(day):
    assert "is before 1880" in implausibility(day, TODAY)
