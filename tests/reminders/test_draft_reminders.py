"""RIS.CRR.06 « provisoire ou non validé »: a draft waiting past its own site delay
(`draft_reminder_delay_hours`) gets one reminder per period to its author, like a provisional report; the
review list (RIS.CRR.05) shows drafts too. End to end: the mail over STARTTLS to the sandbox SMTP server."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlmodel import Session, select

from flows.reminders import report_reminders
from ris.channels.mail import SmtpConfig
from ris.operations import reminders
from ris.site.settings import SiteSettings
from ris.store import db
from ris.store.models import Channel, Delivery, DeliveryStatus, Report, ReportStatus
from tests.reminders.conftest import RADIOLOGIST_MAIL, T0, provisional_report

H = dt.timedelta(hours=1)
SETTINGS = SiteSettings(draft_reminder_delay_hours=24, reminder_delay_hours=48)  # each kind its delay
CONFIG = SmtpConfig(host="localhost", port=2525, from_address="ris@imagerie-demo.mssante.fr")


def draft_report(session: Session, created: dt.datetime) -> Report:
    """A draft (never validated, never provisional) that came into the RIS at `created`."""
    report = provisional_report(session, created)
    report.status, report.provisional_since, report.created_at = ReportStatus.draft, None, created
    session.add(report)
    session.commit()
    return report


def _reminders(session: Session) -> list[Delivery]:
    session.expire_all()
    stmt = select(Delivery).where(Delivery.channel == Channel.reminder).order_by(Delivery.id)
    return list(session.exec(stmt))


def _plan(db_url: str, now: dt.datetime, settings: SiteSettings = SETTINGS) -> reminders.Plan:
    with db.session_scope(db_url) as s:
        return reminders.plan_reminders(s, now, settings)


def test_a_draft_is_overdue_after_its_own_delay(session: Session) -> None:
    old = draft_report(session, T0 - 25 * H)
    draft_report(session, T0 - 23 * H)  # not yet
    provisional_report(session, T0 - 25 * H)  # provisional: its own 48 h delay, not yet
    found = reminders.overdue(session, T0, SETTINGS)
    assert [(w.kind, w.report_id) for w in found] == [("draft", old.id)]
    (item,) = found
    assert item.since == T0 - 25 * H and item.address == RADIOLOGIST_MAIL and item.version == 0
    # the review list (RIS.CRR.05) shows what is not validated yet: the drafts and the provisional one
    assert sorted(w.kind for w in reminders.review(session, T0, 20 * H)) == ["draft", "draft", "provisional"]


def test_one_reminder_per_draft_per_period_and_none_once_it_moved_on(db_url: str, session: Session) -> None:
    draft = draft_report(session, T0 - 25 * H)
    first = _plan(db_url, T0)
    assert len(first.created) == 1 and _plan(db_url, T0 + 10 * H).created == []  # same period
    (row,) = _reminders(session)
    assert (row.action, row.version, row.recipient) == ("draft-0", 0, RADIOLOGIST_MAIL)
    assert len(_plan(db_url, T0 + 24 * H).created) == 1  # the next period: once more
    assert [r.action for r in _reminders(session)] == ["draft-0", "draft-1"]

    with db.session_scope(db_url) as s:  # the draft became provisional before the reminder went out
        s.get(Report, draft.id).status = ReportStatus.provisional
    with db.session_scope(db_url) as s:
        attempt = reminders.prepare_send(s, row.id, T0, SETTINGS, CONFIG)
    assert attempt.message is None and attempt.status is DeliveryStatus.blocked
    assert _reminders(session)[0].reason == "no longer needed: no longer a draft"


def test_the_draft_reminder_mail_names_the_report_and_no_patient(session: Session, db_url: str) -> None:
    draft = draft_report(session, T0 - 25 * H)
    (delivery_id,) = _plan(db_url, T0).to_send
    with db.session_scope(db_url) as s:
        attempt = reminders.prepare_send(s, delivery_id, T0, SETTINGS, CONFIG)
    mail = message_from_bytes(attempt.message.as_bytes(), policy=default_policy)
    assert mail["Subject"] == f"Rappel : compte rendu {draft.id} non validé depuis le 30/11/2026 à 08:00"
    text = mail.get_content()
    assert "n'est pas encore validé" in text and "RACC" in text
    assert "PAT-TROIS" not in mail.as_string()


@pytest.mark.slow
async def test_a_draft_past_its_delay_gets_one_reminder_over_smtp(
    saved_site, mail_sender, smtp, session: Session
) -> None:
    draft = draft_report(session, T0 - 49 * H)  # the demo site's draft delay: 48 h
    draft_report(session, T0 - 40 * H)  # not yet (nor in the next hour)
    counts = await report_reminders(now=T0)
    assert (counts["planned"], counts["sent"], counts["failed"]) == (1, 1, 0)
    again = await report_reminders(now=T0 + H)  # the next hourly run: nothing new
    assert again["planned"] == 0
    (row,) = _reminders(session)
    assert (row.report_id, row.action, row.status) == (draft.id, "draft-0", DeliveryStatus.sent)
    (mail,) = smtp.received
    assert mail.message_id == f"<{row.idempotency_key}>" and mail.rcpt_tos == (RADIOLOGIST_MAIL,)
    assert mail.subject.startswith(f"Rappel : compte rendu {draft.id} non validé depuis le")
    assert mail.tls_version in ("TLSv1.2", "TLSv1.3")
