"""Reminder mails to the site's radiologists (RIS.CRR.06): thin tasks around `ris.operations.reminders` and
`ris.channels.mail`.

Planning creates at most one reminder delivery per overdue report per period (idempotent: a second run,
or a run after a restart, plans nothing new). Sending: 4xx replies and connection faults are retried with
exponential backoff and jitter, always with the same Message-ID; a 5xx reply fails the delivery at once with
its code. Logs carry report and delivery ids only.
"""

from __future__ import annotations

import datetime as dt

from prefect import task

from blocks.mail import load_mail_sender
from blocks.site import load_site_settings
from ris.channels.mail import MailRefused, MailTransient, send
from ris.operations import reminders, scheduled
from ris.store.db import unit_of_work
from ris.store.models import utcnow
from tasks.run_context import SendRecorders, run_logger, sending_retries, settle_send, store_retries

RETRIES = 4


@task(name="plan-reminders", **store_retries())
async def plan_reminders(now: dt.datetime | None = None) -> list[int]:
    """Create this period's reminder deliveries; returns the ids of every reminder still to send. None is
    planned while the site has no mail sender to send them with (one line says so)."""
    log = run_logger(__name__)
    try:
        settings = await load_site_settings()
        await load_mail_sender()  # read once for the run: each send finds it again at no cost
    except scheduled.NotConfigured as exc:
        log.info("no reminder planned: %s", exc)
        return []
    plan = await unit_of_work(reminders.plan_reminders, now or utcnow(), settings)
    log.info(
        "reminders planned: %s new, %s blocked (no mail address), %s to send",
        len(plan.created),
        len(plan.blocked),
        len(plan.to_send),
    )
    return plan.to_send


@task(
    name="send-reminder",
    task_run_name="send-reminder-{delivery_id}",
    **sending_retries(RETRIES, MailTransient),
)
async def send_reminder(delivery_id: int, now: dt.datetime | None = None) -> str:
    """Send one reminder mail; returns its delivery status: `sent`, `failed`, or `blocked` (no longer
    needed: validated or announced meanwhile)."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    sender = await load_mail_sender()
    config = sender.config(settings.tls)
    attempt = await unit_of_work(reminders.prepare_send, delivery_id, now or utcnow(), settings, config)
    if attempt.message is None:
        log.info("reminder %s is %s, nothing to send", delivery_id, attempt.status.value)
        return attempt.status.value
    message = attempt.message
    return await settle_send(
        lambda: send(message, config),
        SendRecorders.for_delivery(
            delivery_id, sent=lambda response: unit_of_work(reminders.record_sent, delivery_id, response)
        ),
        what=f"reminder {delivery_id}",
        attempt=attempt.number,
        refused=MailRefused,
        transient=MailTransient,
    )
