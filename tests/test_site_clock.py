"""Dates are printed and grouped in the site's time zone, whatever the hour: every function that turns a
stored UTC instant into a day or a time people read, run at 23:30 UTC and at 00:30 in Paris, in winter
and in summer, when UTC and Paris name different days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ris import clock, documents
from ris.channels.mail import Reminder, SmtpConfig, reminder_message
from ris.documents.facts import collect
from ris.documents.pdf import replacement_banner, validation_line
from ris.export.writer import Scope, count_scope
from ris.hl7v2.datatypes import dtm
from ris.lifecycle import distribution
from ris.operations import dashboard, retry
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.models import Channel, DeliveryStatus
from tests import factories
from tests.documents.conftest import replace as validate_again
from tests.site_clock import (
    PARIS_HALF_PAST_MIDNIGHT_SUMMER,
    PARIS_MIDNIGHT_SUMMER,
    PARIS_MIDNIGHT_WINTER,
    at_instant,
)

PARIS = "Europe/Paris"
# (instant, the day and time a reader in Paris sees)
HAZARDS = [
    pytest.param(PARIS_MIDNIGHT_WINTER, dt.date(2026, 12, 5), "00:30", id="winter-23:30-utc-00:30-paris"),
    pytest.param(PARIS_MIDNIGHT_SUMMER, dt.date(2026, 7, 15), "01:30", id="summer-23:30-utc"),
    pytest.param(PARIS_HALF_PAST_MIDNIGHT_SUMMER, dt.date(2026, 7, 15), "00:30", id="summer-00:30-paris"),
]


@pytest.mark.parametrize(("instant", "day", "time"), HAZARDS)
@pytest.mark.parametrize("stored", ["aware", "naive"], ids=["postgresql", "sqlite"])
def test_documents_print_the_day_and_time_of_paris(session, instant, day, time, stored) -> None:
    value = instant if stored == "aware" else instant.replace(tzinfo=None)  # SQLite returns naive UTC
    bundle = factories.validated_report(session)
    replaced = validate_again(session, factories.validated_report(session))
    session.expunge_all()  # what follows changes the rows in memory only
    at_instant(bundle, value)
    settings = SiteSettings(replacement_notice="annule et remplace celui du {date}")
    facts = collect(bundle, settings)
    assert validation_line(facts).startswith(f"Validé le {day:%d/%m/%Y} à {time} par ")
    assert documents.build(bundle, settings).pdf_filename.startswith(f"{day:%Y%m%d}_CR_d_imagerie")
    assert dtm(value, PARIS) == f"{day:%Y%m%d}{time.replace(':', '')}00"
    replaced.previous.validated_at = value
    banner = replacement_banner(collect(replaced, settings), settings)
    assert banner == f"annule et remplace celui du {day:%d/%m/%Y}"


@pytest.mark.parametrize(("instant", "day", "time"), HAZARDS)
def test_reminders_dashboard_and_days_follow_the_site_calendar(instant, day, time) -> None:
    reminder = Reminder("provisional", "CR1", 1, "ACC1", instant)
    config = SmtpConfig(host="127.0.0.1", port=25, security="none", from_address="ris@example.org")
    mail = reminder_message(reminder, message_id="m@ris", to="dr@example.org", config=config, now=instant)
    assert f"provisoire depuis le {day:%d/%m/%Y} à {time}" in mail["Subject"]

    zone = ZoneInfo(PARIS)
    assert dashboard.period_key(instant, "day", zone) == day.isoformat()
    assert dashboard.period_key(instant, "month", zone) == f"{day:%Y-%m}"
    assert clock.today(PARIS, now=instant) == day
    assert clock.day_start(day, PARIS) <= instant < clock.day_start(day + dt.timedelta(days=1), PARIS)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_an_instant_lies_within_its_site_day(naive_utc: dt.datetime) -> None:
    instant = naive_utc.replace(tzinfo=dt.UTC)
    day = clock.local_day(instant, PARIS)
    assert clock.day_start(day, PARIS) <= instant < clock.day_start(day + dt.timedelta(days=1), PARIS)


def test_since_a_day_counts_from_that_days_midnight_in_paris(session) -> None:
    """`--since 2026-12-05` typed at 00:40 in Paris covers what failed ten minutes earlier (23:30 UTC on
    the 4th), for the retry and for the export, and not what failed the evening before."""
    bundle = factories.validated_report(session)
    rid = bundle.report.id
    distribution.plan_version(session, rid, 1, pfi=True, direct=frozenset())
    session.commit()
    hl7 = next(d for d in deliveries.for_version(session, rid, 1) if d.channel is Channel.hl7)
    deliveries.set_status(session, hl7, DeliveryStatus.failed, "rejected by the PFI: AR")
    hl7.updated_at = PARIS_MIDNIGHT_WINTER
    session.commit()
    since = clock.day_start(dt.date(2026, 12, 5), PARIS)
    units, _ = retry.select_units(session, report_id=rid, since=since)
    assert [u.delivery_ids for u in units] == [(hl7.id,)]
    later = clock.day_start(dt.date(2026, 12, 6), PARIS)
    assert retry.select_units(session, report_id=rid, since=later)[0] == []

    version = bundle.version
    version.validated_at = bundle.report.updated_at = PARIS_MIDNIGHT_WINTER
    session.add_all([version, bundle.report])
    session.commit()
    now = dt.datetime.now(dt.UTC)
    in_paris = count_scope(session, Scope(as_of=now, since=dt.date(2026, 12, 5), zone=PARIS))
    assert in_paris["reports"] >= 1
    next_day = count_scope(session, Scope(as_of=now, since=dt.date(2026, 12, 6), zone=PARIS))
    assert next_day["reports"] == 0
