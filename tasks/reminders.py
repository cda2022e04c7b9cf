"""Reminder mails to the site's radiologists (RIS.CRR.06): thin tasks around `ris.reminders` and
`ris.channels.mail`.

Planning creates at most one reminder delivery per overdue report per period (idempotent: a second run,
or a run after a restart, plans nothing new). Sending: 4xx replies and connection faults are retried with
exponential backoff and jitter, always with the same Message-ID; a 5xx reply fails the delivery at once with
its code. Logs carry report and delivery ids only.
"""

from __future__ import annotations

import datetime as dt

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from blocks.mail import load_mail_sender
from blocks.site import load_site_settings
from ris import reminders
from ris.channels.mail import MailRefused, MailTransient, send
from ris.store.db import unit_of_work
from ris.store.models import utcnow
from tasks.run_context import final_attempt, run_logger, sending_retries

RETRIES = 4


def mail_transient(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry on a fault that may pass (4xx, connection), never on a refusal."""
    return isinstance(state.data, MailTransient)


@task(name="plan-reminders")
async def plan_reminders(now: dt.datetime | None = None) -> list[int]:
    """Create this period's reminder deliveries; returns the ids of every reminder still to send."""
    log = run_logger(__name__)
    settings = await load_site_settings()
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
    **{**sending_retries(RETRIES), "retry_condition_fn": mail_transient},
)
async def send_reminder(delivery_id: int, now: dt.datetime | None = None) -> str:
    """Send one reminder mail; returns its delivery status: `sent`, `failed`, or `blocked` (no longer
    needed: validated or announced meanwhile)."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    sender = await load_mail_sender()
    config = sender.config()
    attempt = await unit_of_work(reminders.prepare_send, delivery_id, now or utcnow(), settings, config)
    if attempt.message is None:
        log.info("reminder %s is %s, nothing to send", delivery_id, attempt.status.value)
        return attempt.status.value
    try:
        response = await send(attempt.message, config)
    except MailRefused as exc:
        status = await unit_of_work(reminders.record_refused, delivery_id, exc.reason)
        log.error("reminder %s refused: %s", delivery_id, exc.reason)
        return status.value
    except MailTransient as exc:
        give_up = final_attempt()
        status = await unit_of_work(reminders.record_transient, delivery_id, exc.reason, give_up=give_up)
        if give_up:
            log.error("reminder %s failed after %s attempts: %s", delivery_id, attempt.number, exc.reason)
            return status.value
        log.warning("reminder %s attempt %s: %s (will retry)", delivery_id, attempt.number, exc.reason)
        raise
    status = await unit_of_work(reminders.record_sent, delivery_id, response)
    log.info("reminder %s sent (attempt %s)", delivery_id, attempt.number)
    return status.value
