"""Which reports are overdue, one reminder per report per period, and the reminder mail itself (pure)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from ris.channels.mail import MailConfigError, SmtpConfig
from ris.operations import reminders
from ris.operations.summary import report_summary
from ris.site.settings import SiteSettings
from ris.store import db
from ris.store.models import Channel, Delivery, DeliveryEvent, DeliveryStatus, ReportStatus
from tests.reminders.conftest import (
    NO_MAIL_RPPS,
    RADIOLOGIST_MAIL,
    T0,
    announcement_pending,
    provisional_report,
)

H = dt.timedelta(hours=1)
SETTINGS = SiteSettings()  # 48 h for both delays, reminded again every 48 h
CONFIG = SmtpConfig(
    host="localhost", port=2525, from_address="ris@imagerie-demo.mssante.fr", from_label="RIS"
)


def _reminders(session: Session) -> list[Delivery]:
    return list(
        session.exec(select(Delivery).where(Delivery.channel == Channel.reminder).order_by(Delivery.id))
    )


def _plan(db_url: str, now: dt.datetime, settings: SiteSettings = SETTINGS) -> reminders.Plan:
    with db.session_scope(db_url) as s:
        return reminders.plan_reminders(s, now, settings)


def test_overdue_finds_exactly_the_reports_waiting_past_their_delay(session: Session) -> None:
    old = provisional_report(session, T0 - 49 * H)
    provisional_report(session, T0 - 47 * H)  # not yet
    late = announcement_pending(session, T0 - 72 * H)
    announcement_pending(session, T0 - 72 * H, recorded=True)  # announced: nothing waits
    announcement_pending(session, T0 - 10 * H)  # not yet
    validated = announcement_pending(session, T0 - 90 * H)
    validated.announcement_required = False
    session.add(validated)
    session.commit()

    found = reminders.overdue(session, T0, SETTINGS)
    assert [(w.kind, w.report_id) for w in found] == [("announcement", late.id), ("provisional", old.id)]
    assert found[1].responsible_rpps == old.author_rpps and found[1].address == RADIOLOGIST_MAIL
    assert found[0].responsible_rpps == late.validator_rpps and found[0].version == 1
    # the review list takes any threshold (RIS.CRR.05)
    assert len(reminders.review(session, T0, 5 * H)) == 4
    shorter = SiteSettings(reminder_delay_hours=1, announcement_reminder_delay_hours=100)
    assert {w.kind for w in reminders.overdue(session, T0, shorter)} == {"provisional"}


def test_one_reminder_per_report_per_period_whatever_the_number_of_runs(
    db_url: str, session: Session
) -> None:
    report = provisional_report(session, T0 - 50 * H)
    first = _plan(db_url, T0)
    assert len(first.created) == 1 and first.to_send == first.created
    assert _plan(db_url, T0).created == []  # same run again
    assert _plan(db_url, T0 + 40 * H).created == []  # later, same period (48 h)
    db.clear_engines()  # a restart of the engine: new connections, nothing kept in memory
    assert _plan(db_url, T0 + 40 * H).created == []
    session.expire_all()
    rows = _reminders(session)
    assert [(r.report_id, r.action, r.recipient, r.status) for r in rows] == [
        (report.id, "remind-0", RADIOLOGIST_MAIL, DeliveryStatus.pending)
    ]
    assert rows[0].idempotency_key.endswith("@reminder.ris-engine")
    assert _plan(db_url, T0 + 47 * H).created != []  # the next period: reminded again
    session.expire_all()
    assert [r.action for r in _reminders(session)] == ["remind-0", "remind-1"]


def test_the_repeat_period_is_a_setting_and_missed_periods_are_not_caught_up(
    db_url: str, session: Session
) -> None:
    provisional_report(session, T0 - 48 * H - 10 * dt.timedelta(minutes=1))  # overdue 10 min ago
    hourly = SiteSettings(reminder_repeat_hours=1)
    _plan(db_url, T0, hourly)
    _plan(db_url, T0 + 30 * dt.timedelta(minutes=1), hourly)
    _plan(db_url, T0 + 5 * H, hourly)  # the engine was stopped for hours: one reminder, not five
    session.expire_all()
    assert [r.action for r in _reminders(session)] == ["remind-0", "remind-5"]


def test_a_radiologist_without_mail_address_is_blocked_with_a_reason(db_url: str, session: Session) -> None:
    provisional_report(session, T0 - 49 * H, author_rpps=NO_MAIL_RPPS)
    plan = _plan(db_url, T0)
    assert plan.created == [] and len(plan.blocked) == 1 and plan.to_send == []
    (row,) = _reminders(session)
    assert row.status is DeliveryStatus.blocked and row.recipient == f"rpps:{NO_MAIL_RPPS}"
    assert reminders.NO_ADDRESS in row.reason
    assert _plan(db_url, T0 + H).blocked == []  # not again in the same period


def test_a_report_validated_meanwhile_is_not_reminded(db_url: str, session: Session) -> None:
    report = provisional_report(session, T0 - 49 * H)
    (delivery_id,) = _plan(db_url, T0).to_send
    report.status = ReportStatus.validated  # validated between the planning and the send
    session.add(report)
    session.commit()
    with db.session_scope(db_url) as s:
        attempt = reminders.prepare_send(s, delivery_id, T0, SETTINGS, CONFIG)
    assert attempt.message is None and attempt.status is DeliveryStatus.blocked


def test_the_reminder_mail_carries_ids_only_and_its_message_id_is_the_key(
    db_url: str, session: Session
) -> None:
    report = provisional_report(session, T0 - 49 * H)
    (delivery_id,) = _plan(db_url, T0).to_send
    with db.session_scope(db_url) as s:
        first = reminders.prepare_send(s, delivery_id, T0, SETTINGS, CONFIG)
    with db.session_scope(db_url) as s:
        again = reminders.prepare_send(s, delivery_id, T0 + H, SETTINGS, CONFIG)  # a retry
        key = s.get(Delivery, delivery_id).idempotency_key
    assert first.message["Message-ID"] == again.message["Message-ID"] == f"<{key}>"
    assert (first.number, again.number) == (1, 2)
    raw = first.message.as_bytes()
    text = message_from_bytes(raw).get_payload(decode=True).decode()
    assert report.id in first.message["Subject"] and "provisoire" in first.message["Subject"]
    assert "RACC" in text and "01/12/2026" not in text and "29/11/2026 à 08:00" in text  # Paris time
    for health_data in (b"PAT-TROIS", b"DOMINIQUE", b"279035121518989", b"1979"):
        assert health_data not in raw
    assert first.message["To"] == RADIOLOGIST_MAIL and first.message["Auto-Submitted"] == "auto-generated"


def test_reminders_stay_out_of_the_distribution_summary(db_url: str, session: Session) -> None:
    report = announcement_pending(session, T0 - 72 * H)
    before = report_summary(session, report.id)
    _plan(db_url, T0)
    after = report_summary(session, report.id, with_timeline=True)
    assert set(after["channels"]) == {"dmp", "mss-ps", "mss-patient", "hl7"} == set(before["channels"])
    assert after["channels"] == before["channels"] and "reminder" not in after["reasons"]
    assert all(d["channel"] != "reminder" for d in after["deliveries"])
    assert [r["action"] for r in after["reminders"]] == ["announce-0"]
    events = session.exec(
        select(DeliveryEvent).join(Delivery).where(Delivery.channel == Channel.reminder)
    ).all()
    assert [e.status for e in events] == [DeliveryStatus.pending]


def test_a_plain_connection_is_refused_beyond_loopback() -> None:
    SmtpConfig(host="127.0.0.1", port=25, from_address="a@b.fr", security="none")
    with pytest.raises(MailConfigError, match="security 'none': allowed for a loopback host only"):
        SmtpConfig(host="smtp.example.fr", port=25, from_address="a@b.fr", security="none")


# --- the period arithmetic --------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(dt.UTC)
)
durations = st.integers(min_value=1, max_value=24 * 60 * 60 * 30).map(lambda s: dt.timedelta(seconds=s))


@given(since=moments, now=moments, delay=durations, period=durations)
def test_period_index_is_none_before_the_delay_then_counts_whole_periods(since, now, delay, period) -> None:
    n = reminders.period_index(since, now, delay, period)
    if now < since + delay:
        assert n is None
    else:
        assert n >= 0
        start = since + delay + n * period
        assert start <= now < start + period


@given(since=moments, delay=durations, period=durations, a=durations, b=durations)
def test_period_index_never_goes_back_and_one_period_holds_one_index(since, delay, period, a, b) -> None:
    first, second = sorted((since + delay + a, since + delay + a + b))
    n1 = reminders.period_index(since, first, delay, period)
    n2 = reminders.period_index(since, second, delay, period)
    assert n1 is not None and n2 is not None and n1 <= n2
    assert (n2 - n1) <= b // period + 1
    if second - first < period and (first - since - delay) // period == (second - since - delay) // period:
        assert n1 == n2  # two runs in the same period: the same action, so no second reminder


@given(since=moments, delay=durations, period=durations, k=st.integers(min_value=0, max_value=1000))
def test_each_period_boundary_starts_the_next_reminder(since, delay, period, k) -> None:
    boundary = since + delay + k * period
    assert reminders.period_index(since, boundary, delay, period) == k
    assert reminders.period_index(since, boundary - dt.timedelta(microseconds=1), delay, period) == (
        k - 1 if k else None
    )
