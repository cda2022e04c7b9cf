"""Reminders (RIS.CRR.05–06): which reports wait too long, and one reminder mail per report per period.

Three things wait on a radiologist of the site:
- a *draft* (not validated, RIS.CRR.06 « non validé ») past `draft_reminder_delay_hours` since it came
  into the RIS: its author is reminded;
- a *provisional* report (RIS.CRR.04) past `reminder_delay_hours` since it became provisional: its
  author is reminded;
- a validated report whose announcement to the patient is required and not recorded past
  `announcement_reminder_delay_hours` since its validation: its validator is reminded.

Periods: an item overdue since `since + delay` is in period n = ⌊(now − since − delay) / period⌋ (period:
`reminder_repeat_hours`, by default the delay itself). Each period gets at most one reminder delivery,
action `draft-<n>` (draft), `remind-<n>` (provisional) or `announce-<n>` (announcement), on the `reminder`
channel: a second run in the same period, or a run after a restart, finds it and creates nothing; the
unique constraint on deliveries is the backstop. Periods missed while the engine was stopped are not caught
up: only the current one is sent.

Nothing here names a patient: reminders carry the report id, the accession number and dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from ris.channels.mail import Reminder, SmtpConfig, reminder_message
from ris.clock import aware
from ris.ids import delivery_key
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.models import (
    Channel,
    Correspondent,
    Delivery,
    DeliveryStatus,
    Exam,
    Report,
    ReportStatus,
)

Kind = Literal["draft", "provisional", "announcement"]
PREFIX: dict[str, str] = {"draft": "draft-", "provisional": "remind-", "announcement": "announce-"}
SINCE: dict[str, str] = {  # the column each kind waits since
    "draft": "created_at",
    "provisional": "provisional_since",
    "announcement": "validated_at",
}
NO_ADDRESS = "no mail address for the responsible radiologist"


@dataclass(frozen=True)
class Waiting:
    """One report waiting on a radiologist: since when, and who is responsible (ids only)."""

    kind: Kind
    report_id: str
    version: int
    accession_number: str
    since: dt.datetime
    responsible_rpps: str | None
    responsible_name: str | None
    address: str | None

    def as_dict(self, now: dt.datetime) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.report_id,
            "version": self.version,
            "accession_number": self.accession_number,
            "since": self.since.isoformat(timespec="seconds"),
            "waiting_hours": round((now - self.since).total_seconds() / 3600, 1),
            "responsible_rpps": self.responsible_rpps,
            "responsible_name": self.responsible_name,
        }


def hours(value: float) -> dt.timedelta:
    return dt.timedelta(hours=value)


def delay_of(settings: SiteSettings, kind: Kind) -> dt.timedelta:
    delays = {
        "draft": settings.draft_reminder_delay_hours,
        "provisional": settings.reminder_delay_hours,
        "announcement": settings.announcement_reminder_delay_hours,
    }
    return hours(delays[kind])


def period_of(settings: SiteSettings, kind: Kind) -> dt.timedelta:
    """How often a report still overdue is reminded: the repeat setting, or the delay itself."""
    if settings.reminder_repeat_hours is not None:
        return hours(settings.reminder_repeat_hours)
    return delay_of(settings, kind)


def period_index(
    since: dt.datetime, now: dt.datetime, delay: dt.timedelta, period: dt.timedelta
) -> int | None:
    """Which reminder period `now` falls in (0 for the first), None while the item is not overdue."""
    if period <= dt.timedelta(0):
        raise ValueError("period: must be positive")
    elapsed = now - (since + delay)
    if elapsed < dt.timedelta(0):
        return None
    return elapsed // period


def _name(row: Correspondent | None) -> str | None:
    if row is None:
        return None
    return " ".join(part for part in (row.title, row.family, row.given) if part)


def waiting(
    session: Session,
    now: dt.datetime,
    provisional_after: dt.timedelta,
    announcement_after: dt.timedelta,
    draft_after: dt.timedelta,
) -> list[Waiting]:
    """Drafts in the RIS for longer than `draft_after`, provisional reports older than
    `provisional_after`, and validated reports whose required announcement is still not recorded
    `announcement_after` after validation; oldest first."""
    responsible = aliased(Correspondent)
    found: list[Waiting] = []
    drafts = (
        select(Report, Exam.accession_number, responsible)
        .join(Exam, Exam.id == Report.exam_id)
        .join(responsible, responsible.rpps == Report.author_rpps, isouter=True)
        .where(Report.status == ReportStatus.draft, Report.created_at <= now - draft_after)
    )
    for report, accession, person in session.exec(drafts):
        found.append(
            Waiting(
                "draft",
                report.id,
                report.version,
                accession,
                aware(report.created_at),
                report.author_rpps,
                _name(person),
                person.mss_address if person else None,
            )
        )
    provisional = (
        select(Report, Exam.accession_number, responsible)
        .join(Exam, Exam.id == Report.exam_id)
        .join(responsible, responsible.rpps == Report.author_rpps, isouter=True)
        .where(
            Report.status == ReportStatus.provisional,
            Report.provisional_since.is_not(None),
            Report.provisional_since <= now - provisional_after,
        )
    )
    for report, accession, person in session.exec(provisional):
        found.append(
            Waiting(
                "provisional",
                report.id,
                report.version,
                accession,
                aware(report.provisional_since),
                report.author_rpps,
                _name(person),
                person.mss_address if person else None,
            )
        )
    announcement = (
        select(Report, Exam.accession_number, responsible)
        .join(Exam, Exam.id == Report.exam_id)
        .join(
            responsible,
            responsible.rpps == sa.func.coalesce(Report.validator_rpps, Report.author_rpps),
            isouter=True,
        )
        .where(
            Report.status == ReportStatus.validated,
            Report.announcement_required.is_(True),
            Report.announcement_recorded_at.is_(None),
            Report.validated_at.is_not(None),
            Report.validated_at <= now - announcement_after,
        )
    )
    for report, accession, person in session.exec(announcement):
        found.append(
            Waiting(
                "announcement",
                report.id,
                report.version,
                accession,
                aware(report.validated_at),
                report.validator_rpps or report.author_rpps,
                _name(person),
                person.mss_address if person else None,
            )
        )
    return sorted(found, key=lambda w: (w.since, w.report_id))


def overdue(session: Session, now: dt.datetime, settings: SiteSettings) -> list[Waiting]:
    """What the site's delays make overdue now (RIS.CRR.06)."""
    return waiting(
        session,
        now,
        delay_of(settings, "provisional"),
        delay_of(settings, "announcement"),
        delay_of(settings, "draft"),
    )


def review(session: Session, now: dt.datetime, older_than: dt.timedelta) -> list[Waiting]:
    """The review list (RIS.CRR.05): everything waiting on a radiologist for longer than `older_than`."""
    return waiting(session, now, older_than, older_than, older_than)


# --- planning ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Delivery ids: created by this run, and every reminder still to send (including a crashed run's)."""

    created: list[int]
    blocked: list[int]
    to_send: list[int]


def action_for(kind: Kind, n: int) -> str:
    return f"{PREFIX[kind]}{n}"


def kind_of(action: str) -> Kind:
    for kind, prefix in PREFIX.items():
        if action.startswith(prefix):
            return kind  # type: ignore[return-value]
    raise ValueError(f"action {action!r}: not a reminder")


def _already(session: Session, item: Waiting, action: str) -> bool:
    """One reminder per report per period, whichever address it went to."""
    stmt = select(Delivery.id).where(
        Delivery.report_id == item.report_id,
        Delivery.version == item.version,
        Delivery.channel == Channel.reminder,
        Delivery.action == action,
    )
    return session.exec(stmt).first() is not None


def plan_reminders(session: Session, now: dt.datetime, settings: SiteSettings) -> Plan:
    """One reminder delivery per overdue report for the current period: `pending` to be sent, or
    `blocked` when the radiologist has no mail address. Idempotent within a period."""
    created: list[int] = []
    blocked: list[int] = []
    for item in overdue(session, now, settings):
        n = period_index(item.since, now, delay_of(settings, item.kind), period_of(settings, item.kind))
        if n is None:  # the query and the arithmetic agree; kept for safety at the boundary
            continue
        action = action_for(item.kind, n)
        if _already(session, item, action):
            continue
        recipient = item.address or f"rpps:{item.responsible_rpps or 'unknown'}"
        row = Delivery(
            report_id=item.report_id,
            version=item.version,
            action=action,
            channel=Channel.reminder,
            recipient=recipient,
            route="direct",
            status=DeliveryStatus.pending,
            idempotency_key=delivery_key(Channel.reminder.value),
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except sa.exc.IntegrityError:  # another run planned it a moment ago: the constraint says so
            continue
        waited = f"{item.kind} since {item.since.isoformat(timespec='minutes')}, reminder {n + 1}"
        if item.address is None:
            deliveries.set_status(session, row, DeliveryStatus.blocked, f"{NO_ADDRESS} ({waited})")
            blocked.append(row.id)
        else:
            deliveries.set_status(session, row, DeliveryStatus.pending, waited)
            created.append(row.id)
    to_send = session.exec(
        select(Delivery.id)
        .where(Delivery.channel == Channel.reminder, Delivery.status == DeliveryStatus.pending)
        .order_by(Delivery.id)
    ).all()
    return Plan(created, blocked, list(to_send))


# --- sending ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One try at sending a reminder: `message` is None when there is nothing (more) to send."""

    delivery_id: int
    status: DeliveryStatus
    message: EmailMessage | None
    number: int = 0


def _still_waiting(report: Report, delivery: Delivery, kind: Kind) -> bool:
    if report.version != delivery.version:
        return False
    if kind == "draft":
        return report.status is ReportStatus.draft
    if kind == "provisional":
        return report.status is ReportStatus.provisional
    return (
        report.status is ReportStatus.validated
        and report.announcement_required
        and report.announcement_recorded_at is None
    )


def prepare_send(
    session: Session, delivery_id: int, now: dt.datetime, settings: SiteSettings, config: SmtpConfig
) -> Attempt:
    """The message of a pending reminder (same Message-ID at every try), or why there is none."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.channel is not Channel.reminder:
        raise ValueError(f"delivery {delivery_id}: no such reminder")
    if delivery.status is not DeliveryStatus.pending:
        return Attempt(delivery_id, delivery.status, None, delivery.attempts)
    kind = kind_of(delivery.action)
    report = session.get(Report, delivery.report_id)
    if not _still_waiting(report, delivery, kind):
        done = {
            "draft": "no longer a draft",
            "provisional": "validated",
            "announcement": "announcement recorded or version replaced",
        }[kind]
        deliveries.set_status(session, delivery, DeliveryStatus.blocked, f"no longer needed: {done}")
        return Attempt(delivery_id, delivery.status, None, delivery.attempts)
    exam = session.get(Exam, report.exam_id)
    since = getattr(report, SINCE[kind])
    delivery.attempts += 1
    session.add(delivery)
    message = reminder_message(
        Reminder(kind, report.id, report.version, exam.accession_number, aware(since)),
        message_id=delivery.idempotency_key,
        to=delivery.recipient,
        config=config,
        now=now,
        timezone=settings.timezone,
    )
    return Attempt(delivery_id, delivery.status, message, delivery.attempts)


def record_sent(session: Session, delivery_id: int, response: str) -> DeliveryStatus:
    delivery = session.get(Delivery, delivery_id)
    delivery.external_id = response[:128] or None
    deliveries.set_status(
        session, delivery, DeliveryStatus.sent, f"accepted by the mail server: {response}"[:500]
    )
    return delivery.status
