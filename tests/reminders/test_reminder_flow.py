"""report-reminders end to end: the flow under the session's Prefect server, mails over STARTTLS to the
sandbox SMTP server (its certificate verified against the sandbox CA), delivery rows in the store."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from prefect.settings import PREFECT_API_URL
from sqlmodel import Session, select

from flows.reminders import report_reminders
from ris.channels.mail import MailTransient
from ris.operations import reminders
from ris.store import db
from ris.store.models import Channel, Delivery, DeliveryStatus
from tasks.reminders import send_reminder
from tests.conftest import ROOT
from tests.reminders.conftest import RADIOLOGIST_MAIL, T0, announcement_pending, provisional_report

pytestmark = pytest.mark.slow
H = dt.timedelta(hours=1)


def _rows(session: Session) -> list[Delivery]:
    session.expire_all()
    stmt = select(Delivery).where(Delivery.channel == Channel.reminder).order_by(Delivery.id)
    return list(session.exec(stmt))


def _run_in_a_new_process(db_url: str, now: dt.datetime) -> dict:
    """The flow run by a freshly started interpreter: nothing of this process's memory survives."""
    code = (
        "import asyncio, datetime as dt, json; from flows.reminders import report_reminders; "
        f"print(json.dumps(asyncio.run(report_reminders(now=dt.datetime.fromisoformat({now.isoformat()!r})))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
    env.update(RIS_DATABASE_URL=db_url, PREFECT_API_URL=str(PREFECT_API_URL.value()), DO_NOT_TRACK="1")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_reminders_reach_exactly_the_overdue_reports_and_never_repeat(
    saved_site, mail_sender, smtp, db_url: str, session: Session
) -> None:
    overdue = {
        provisional_report(session, T0 - 49 * H).id,
        provisional_report(session, T0 - 60 * H).id,
        announcement_pending(session, T0 - 50 * H).id,
    }
    provisional_report(session, T0 - 40 * H)  # not yet (nor in the next two hours)
    announcement_pending(session, T0 - 50 * H, recorded=True)  # announced

    state = await report_reminders(now=T0, return_state=True)
    counts = await state.aresult()
    assert counts["sent"] == 3 and counts["failed"] == counts["error"] == 0
    rows = _rows(session)
    assert {r.report_id for r in rows} == overdue
    assert all(r.status is DeliveryStatus.sent and r.recipient == RADIOLOGIST_MAIL for r in rows)
    assert sorted(m.message_id for m in smtp.received) == sorted(f"<{r.idempotency_key}>" for r in rows)
    assert all(m.tls_version in ("TLSv1.2", "TLSv1.3") for m in smtp.received)
    assert all(m.rcpt_tos == (RADIOLOGIST_MAIL,) and m.path.is_file() for m in smtp.received)
    assert smtp.received[0].mail_from == "ris@imagerie-demo.mssante.fr"

    # the next hourly run, in the same process, then in a restarted engine: nothing new
    again = await report_reminders(now=T0 + H)
    assert again["planned"] == 0
    db.clear_engines()
    assert _run_in_a_new_process(db_url, T0 + 2 * H)["planned"] == 0
    assert len(smtp.received) == 3 and len(_rows(session)) == 3

    # a period later (48 h): each still-waiting report once more, and the young one now overdue for the
    # first time; never a duplicate Message-ID
    later = _run_in_a_new_process(db_url, T0 + 48 * H)
    assert later["sent"] == 4
    assert len(smtp.received) == 7 and not any(m.duplicate for m in smtp.received)
    assert sorted(r.action for r in _rows(session)) == [
        "announce-0",
        "announce-1",
        "remind-0",
        "remind-0",
        "remind-0",
        "remind-1",
        "remind-1",
    ]
    timeline = [e.status for e in db_timeline(session, _rows(session)[0].id)]
    assert timeline == [DeliveryStatus.pending, DeliveryStatus.sent]


def db_timeline(session: Session, delivery_id: int):
    from ris.store.deliveries import timeline

    return timeline(session, delivery_id)


async def test_a_5xx_reply_fails_the_reminder_at_once_with_its_code(
    saved_site, mail_sender, smtp, session: Session
) -> None:
    provisional_report(session, T0 - 49 * H)
    smtp.data_reply = "550 5.7.1 Mailbox unavailable"
    counts = await report_reminders(now=T0)
    assert counts["failed"] == 1
    (row,) = _rows(session)
    assert row.status is DeliveryStatus.failed and row.attempts == 1
    assert "550" in row.reason and "5.7.1 Mailbox unavailable" in row.reason
    assert smtp.received == []


async def test_a_transient_fault_is_retried_with_the_same_message_id(
    saved_site, mail_sender, smtp, db_url: str, session: Session
) -> None:
    provisional_report(session, T0 - 49 * H)
    with db.session_scope(db_url) as s:
        (delivery_id,) = reminders.plan_reminders(s, T0, saved_site).to_send
    smtp.rcpt_reply = "451 4.3.0 Try again later"
    with pytest.raises(MailTransient):  # Prefect retries the task on this
        await send_reminder.fn(delivery_id, T0)
    (row,) = _rows(session)
    assert row.status is DeliveryStatus.pending and "451" in row.last_error
    smtp.rcpt_reply = None
    assert await send_reminder.fn(delivery_id, T0) == "sent"
    (mail,) = smtp.received
    assert mail.message_id == f"<{row.idempotency_key}>"
    assert await send_reminder.fn(delivery_id, T0) == "sent"  # already sent: nothing goes out again
    assert len(smtp.received) == 1


async def test_a_crash_after_sending_resends_the_same_message_id(
    saved_site, mail_sender, smtp, db_url: str, session: Session
) -> None:
    """Sent, then the worker died before recording it: the next run sends the same Message-ID again, so
    the receiving side can recognise the duplicate (the sandbox flags it)."""
    from ris.channels.mail import send

    provisional_report(session, T0 - 49 * H)
    with db.session_scope(db_url) as s:
        (delivery_id,) = reminders.plan_reminders(s, T0, saved_site).to_send
    with db.session_scope(db_url) as s:
        attempt = reminders.prepare_send(s, delivery_id, T0, saved_site, mail_sender.config())
    await send(attempt.message, mail_sender.config())  # ...and the crash: nothing recorded
    counts = await report_reminders(now=T0 + H)
    assert counts == {"planned": 1, "sent": 1, "failed": 0, "blocked": 0, "pending": 0, "error": 0}
    first, second = smtp.received
    assert first.message_id == second.message_id and second.duplicate
    (row,) = _rows(session)
    assert row.status is DeliveryStatus.sent and row.attempts == 2
