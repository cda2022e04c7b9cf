"""An administrator's retry of failed deliveries, store side: what to retry, and reopening it, audited.

What is retried is grouped into units, each sent by one sender of its kind (`sender_key`):
- `hl7`: a failed HL7 message (initial, replace, visibility, release, delete) sent again with its own
  MSH-10; the relayed copies that failed with it (reason `PFI message failed: …`) go back to pending.
- `relay`: copies the PFI relayed whose receipt (ZAM Z01 / Z02) reported a failure. The PFI filed the
  message, so sending it again would be a duplicate; they leave in a new message of the same action
  carrying only them, with a new MSH-10 (`ris.operations.retry_relay`).
- `direct:<channel>`: a copy the engine sends itself (MSSanté today, DMP when it comes), with the same
  Message-ID; a failure reported later by a DSN makes one more attempt.
- `reminder`: a reminder mail, same Message-ID.
A delivery that reached its recipient (sent, acknowledged, read) is never selected nor sent again.

Resumable: reopening marks the delivery pending with a detail starting `RETRY_MARK`; a retry interrupted
before it sent is selected again (pending, last event still that mark), one that went is not.

Who asks: `ris delivery retry` checks who acts (their permission), then records the request (`RetryRequest`:
who, why, what, the new address if any, audited) and starts the `delivery-retry` run with its id only; the
run does what the request says (`accept`), once. A run started without a request (from the Prefect UI or
its API) carries no authority it cannot prove: its actor is recorded as the UI (`UI_ACTOR`), never a name
typed in a parameter, and it cannot change an address nor send to one of its choosing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.channels.hl7.publish import RELAY_FAILED, relayed
from ris.channels.hl7.resend import base_action, is_resend
from ris.lifecycle.distribution import DELETE
from ris.lifecycle.routing import PFI
from ris.operations.retry_relay import ensure_resend, resends
from ris.store import audit, deliveries
from ris.store.models import (
    Channel,
    Correspondent,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Report,
    ReportStatus,
    RetryRequest,
)
from ris.text_rules import line_problem

RETRY_MARK = "retry by "
MAX_REASON = 200
UI_ACTOR = "prefect-ui"  # who asked, for a run started from the Prefect UI or API without a request


class RetryRuleError(ValueError):
    """A retry that cannot be made; the text names the field and the rule."""


class SendAgain(StrEnum):
    """How a retry sends a delivery again: the keys of the dispatch table (tasks.retry.SENDERS)."""

    hl7 = "hl7"
    relay = "relay"
    reminder = "reminder"
    direct_dmp = f"direct:{Channel.dmp.value}"
    direct_mss_ps = f"direct:{Channel.mss_ps.value}"
    direct_mss_patient = f"direct:{Channel.mss_patient.value}"


@dataclass(frozen=True)
class RetryUnit:
    """What one sender sends again: one delivery, or the failed relayed copies of one message."""

    kind: SendAgain
    report_id: str
    version: int
    action: str
    delivery_ids: tuple[int, ...]


@dataclass(frozen=True)
class Dispatch:
    """What the sender gets once the unit is reopened: the delivery to send (a relay unit's new message)."""

    kind: SendAgain
    delivery_id: int
    report_id: str
    version: int
    action: str

    def releases_announced(self, status: str) -> bool:
        """An HL7 publication (not a deletion) the PFI acknowledged releases what waited for it."""
        return self.kind == SendAgain.hl7 and self.action != DELETE and status == DeliveryStatus.acknowledged


def sender_key(row: Delivery) -> SendAgain:
    """The dispatch key of a delivery: how a retry sends it again."""
    if row.channel is Channel.hl7:
        return SendAgain.relay if is_resend(row) else SendAgain.hl7
    if row.channel is Channel.reminder:
        return SendAgain.reminder
    if row.route == PFI:
        return SendAgain.relay
    return SendAgain(f"direct:{row.channel.value}")


def check_request(
    actor: str, reason: str, *, to: str | None = None, delivery_ids: list[int] | None = None
) -> tuple[str, str]:
    """Who and why, cleaned; refused when missing (the audit needs both) or when `to` is not about one
    delivery."""
    if to is not None and len(delivery_ids or []) != 1:
        raise RetryRuleError("to: give the one delivery whose recipient's address changed")
    actor, reason = (actor or "").strip(), " ".join((reason or "").split())
    if not actor:
        raise RetryRuleError("actor: who asks for the retry is required (audited)")
    if not reason:
        raise RetryRuleError("--reason: why the delivery is retried is required (audited)")
    if len(reason) > MAX_REASON:
        raise RetryRuleError(f"--reason: at most {MAX_REASON} characters")
    if problem := line_problem(reason):
        raise RetryRuleError(f"--reason: {problem}")
    return actor, reason


def check_address(to: str) -> str:
    """A new MSSanté address, as `--to` gives it: one mail address, one line (it becomes a mail's To)."""
    to = to.strip()
    if "@" not in to or " " in to or len(to) > 254 or line_problem(to):
        raise RetryRuleError(f"--to {to!r}: not an e-mail address")
    return to


@dataclass(frozen=True)
class Mandate:
    """What a retry run may do, and on whose word: the request `ris delivery retry` recorded, or the
    Prefect UI's (no actor of its own, no new address)."""

    actor: str
    reason: str
    delivery_ids: list[int] | None = None
    report_id: str | None = None
    channel: Channel | None = None
    since: dt.date | None = None
    to: str | None = None
    request_id: int | None = None


def record_request(session: Session, mandate: Mandate) -> int:
    """Record what `ris delivery retry` asks, once it checked who acts (their permission): who, why, what,
    the new address if any, audited. The run it starts carries only the returned id."""
    actor, reason = check_request(
        mandate.actor, mandate.reason, to=mandate.to, delivery_ids=mandate.delivery_ids
    )
    row = RetryRequest(
        actor=actor,
        reason=reason,
        delivery_ids=mandate.delivery_ids,
        report_id=mandate.report_id,
        channel=mandate.channel,
        since=mandate.since,
        new_address=check_address(mandate.to) if mandate.to is not None else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="delivery.retry_requested",
        object_type="retryrequest",
        object_id=row.id,
        reason=reason,
        delivery_ids=row.delivery_ids,
        report_id=row.report_id,
        channel=row.channel.value if row.channel else None,
        since=row.since.isoformat() if row.since else None,
        new_address=row.new_address,
    )
    return row.id


def accept(session: Session, request_id: int | None, given: Mandate, run: str | None) -> Mandate:
    """What the run `run` may do. With a request id: the request as recorded, claimed by this run (a
    request is carried out once; the same run started again after a crash resumes it), the run's own
    targets and reason, when it gives any, being the request's. Without: the UI's mandate, `given`
    checked (a reason is required; the actor is the UI, whatever was typed)."""
    if request_id is None:
        _, reason = check_request(UI_ACTOR, given.reason)
        return Mandate(UI_ACTOR, reason, given.delivery_ids, given.report_id, given.channel, given.since)
    row = session.get(RetryRequest, request_id, with_for_update=True)
    if row is None:
        raise RetryRuleError(
            f"request_id {request_id}: no such retry request (`ris delivery retry` records one)"
        )
    if row.run_id is not None and row.run_id != run:
        raise RetryRuleError(
            f"request_id {request_id}: already carried out by run {row.run_id}; "
            "ask again with `ris delivery retry`"
        )
    recorded = Mandate(
        row.actor,
        row.reason,
        row.delivery_ids,
        row.report_id,
        row.channel,
        row.since,
        row.new_address,
        row.id,
    )
    for name in ("reason", "delivery_ids", "report_id", "channel", "since"):
        value = getattr(given, name)
        if value and value != getattr(recorded, name):  # given, and not what was recorded
            raise RetryRuleError(
                f"{name}: not what retry request {request_id} says; start the run without it"
            )
    row.run_id = run
    session.add(row)
    return recorded


def _resumable(session: Session, row: Delivery) -> bool:
    """Reopened by a retry that never sent it (interrupted): the last event of its timeline is the mark."""
    if row.status is not DeliveryStatus.pending:
        return False
    stmt = select(DeliveryEvent).where(DeliveryEvent.delivery_id == row.id).order_by(DeliveryEvent.id.desc())
    last = session.exec(stmt.limit(1)).first()
    return last is not None and (last.detail or "").startswith(RETRY_MARK)


def _reopened(session: Session, pending: sa.Select) -> list[int]:
    """Of the pending deliveries `pending` selects, those a retry reopened and never sent (one query)."""
    ids = pending.with_only_columns(Delivery.id).subquery()
    last = (
        select(DeliveryEvent.delivery_id, sa.func.max(DeliveryEvent.id).label("last"))
        .where(DeliveryEvent.delivery_id.in_(select(ids.c.id)))
        .group_by(DeliveryEvent.delivery_id)
        .subquery()
    )
    stmt = select(DeliveryEvent.delivery_id).join(last, DeliveryEvent.id == last.c.last)
    return list(session.exec(stmt.where(DeliveryEvent.detail.startswith(RETRY_MARK))))


def _caused_by_message(row: Delivery) -> bool:
    """A relayed copy that failed because its HL7 message failed: retried by retrying that message."""
    return row.route == PFI and (row.reason or "").startswith(RELAY_FAILED)


def stale_reason(row: Delivery, report: Report) -> str | None:
    """Why a failed delivery must not leave any more, if so: a deleted report, or a version since
    replaced (the replacement carries the current text to every channel that had this one)."""
    if row.action == DELETE or row.channel is Channel.reminder:
        return None
    if report.status is ReportStatus.deleted:
        return f"report {row.report_id} was deleted"
    if report.version > row.version:
        return f"version {row.version} was replaced by version {report.version}"
    return None


def _message_of(session: Session, row: Delivery) -> Delivery | None:
    """The HL7 message a relayed copy failed with: its own, or the resend that carried it last."""
    action = base_action(row.action)
    own = deliveries.find(session, row.report_id, row.version, Channel.hl7, PFI, action)
    messages = [m for m in [own, *resends(session, row.report_id, row.version, action)] if m is not None]
    failed = [m for m in messages if m.status is DeliveryStatus.failed]
    return failed[-1] if failed else None


def select_units(
    session: Session,
    *,
    delivery_ids: list[int] | None = None,
    report_id: str | None = None,
    channel: Channel | None = None,
    since: dt.datetime | None = None,
) -> tuple[list[RetryUnit], list[str]]:
    """The units to retry and, for explicit ids, why some are not retried (already delivered...).
    Without ids: every failed delivery (and every one a retry reopened and never sent), optionally of
    one report, one channel, failed since an instant (`ris.clock.day_start` of the day asked for)."""
    skipped: list[str] = []
    if delivery_ids:
        rows = []
        for delivery_id in delivery_ids:
            row = session.get(Delivery, delivery_id)
            if row is None:
                raise RetryRuleError(f"delivery {delivery_id}: no such delivery")
            if row.status is not DeliveryStatus.failed and not _resumable(session, row):
                skipped.append(f"delivery {delivery_id} is {row.status.value}: nothing to retry")
                continue
            rows.append(row)
    else:
        stmt = select(Delivery)
        if report_id is not None:
            stmt = stmt.where(Delivery.report_id == report_id)
        if channel is not None:
            stmt = stmt.where(Delivery.channel == channel)
        if since is not None:
            stmt = stmt.where(Delivery.updated_at >= since)
        reopened = _reopened(session, stmt.where(Delivery.status == DeliveryStatus.pending))
        wanted = Delivery.status == DeliveryStatus.failed
        if reopened:
            wanted = sa.or_(wanted, Delivery.id.in_(reopened))
        rows = list(session.exec(stmt.where(wanted).order_by(Delivery.id)))
    units: dict[tuple, RetryUnit] = {}
    reports: dict[str, Report] = {}
    for row in rows:
        if row.report_id not in reports:
            reports[row.report_id] = session.get(Report, row.report_id)
        if (why := stale_reason(row, reports[row.report_id])) is not None:
            skipped.append(f"delivery {row.id}: not retried, {why}")
            continue
        if _caused_by_message(row) and (message := _message_of(session, row)) is not None:
            row = message  # its message is what failed: retrying it relays the copy again
        kind = sender_key(row)
        if kind == SendAgain.relay:
            key = (kind, row.report_id, row.version, base_action(row.action))
            ids = units[key].delivery_ids if key in units else ()
            if row.id not in ids:
                ids = (*ids, row.id)
            units[key] = RetryUnit(kind, row.report_id, row.version, base_action(row.action), ids)
        else:
            units[(kind, row.id)] = RetryUnit(kind, row.report_id, row.version, row.action, (row.id,))
    return list(units.values()), skipped


def _change_address(session: Session, row: Delivery, to: str, actor: str, reason: str) -> None:
    """`--to`: the professional's MSSanté address changed. The copy goes to the new one, and the
    correspondent's address changes with it (the PFI's message names the correspondent's address, and the
    next reports should use it); both audited with the previous and the new address."""
    if row.channel is not Channel.mss_ps:
        raise RetryRuleError(
            f"--to: only an MSSanté copy to a professional has an address (not {row.channel})"
        )
    to = check_address(to)
    clash = deliveries.find(session, row.report_id, row.version, row.channel, to, row.action)
    if clash is not None and clash.id != row.id:
        raise RetryRuleError(f"--to: delivery {clash.id} of this version already goes to that address")
    previous = row.recipient
    stmt = select(Correspondent).where(sa.func.lower(Correspondent.mss_address) == previous.lower())
    for person in session.exec(stmt):
        person.mss_address = to
        session.add(person)
        audit.record(
            session,
            actor=actor,
            action="correspondent.mss_address_changed",
            object_type="correspondent",
            object_id=person.id,
            previous=previous,
            new=to,
            reason=reason,
        )
    row.recipient = to
    session.add(row)
    _audit_delivery(session, row, "delivery.recipient_changed", actor, reason, previous=previous, new=to)


def _audit_delivery(
    session: Session, row: Delivery, action: str, actor: str, reason: str, **detail: Any
) -> None:
    """An administrator's action on a delivery, with who, why and which report version and channel."""
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="delivery",
        object_id=row.id,
        report_id=row.report_id,
        version=row.version,
        channel=row.channel.value,
        reason=reason,
        **detail,
    )


def _reopen(
    session: Session, row: Delivery, actor: str, reason: str, run: str | None, request: int | None
) -> None:
    _audit_delivery(session, row, "delivery.retry", actor, reason, run=run, request=request)
    if row.status is DeliveryStatus.failed:
        deliveries.set_status(
            session, row, DeliveryStatus.pending, f"{RETRY_MARK}{actor}: {reason}", actor=actor
        )


def reopen(
    session: Session,
    unit: RetryUnit,
    *,
    actor: str,
    reason: str,
    to: str | None = None,
    run: str | None = None,
    request: int | None = None,
) -> Dispatch | None:
    """Record who retries what and why (and on which request), and put the unit's deliveries back to
    pending (one unit of work). Returns what to send, or None when everything went meanwhile (another
    retry, a late receipt)."""
    actor, reason = check_request(actor, reason)
    rows = []
    for delivery_id in unit.delivery_ids:
        row = session.get(Delivery, delivery_id)
        session.refresh(row, with_for_update=True)  # a receipt applied meanwhile is seen
        if row.status is DeliveryStatus.failed or _resumable(session, row):
            rows.append(row)
    if not rows:
        return None
    if to is not None:
        if len(rows) != 1:
            raise RetryRuleError("--to: give one delivery id with a new address")
        _change_address(session, rows[0], to, actor, reason)
    for row in rows:
        _reopen(session, row, actor, reason, run, request)
        if row.channel is Channel.hl7 and row.action != DELETE:  # the copies that failed with it go again
            for copy in relayed(session, row):  # a resend's: the copies of the action it repeats
                if copy.status is DeliveryStatus.failed and _caused_by_message(copy):
                    deliveries.set_status(session, copy, DeliveryStatus.pending, "PFI message sent again")
    first = rows[0]
    if unit.kind == SendAgain.relay:
        message = ensure_resend(session, unit.report_id, unit.version, unit.action)
        return Dispatch(unit.kind, message.id, unit.report_id, unit.version, message.action)
    return Dispatch(unit.kind, first.id, first.report_id, first.version, first.action)


def report_of(session: Session, delivery_id: int) -> tuple[str, int]:
    row = session.get(Delivery, delivery_id)
    return row.report_id, row.version


def not_found_reason(channel: Channel | None, report_id: str | None) -> str:
    what = f"{channel.value} " if channel else ""
    return f"no failed {what}delivery{' for report ' + report_id if report_id else ''}"


def settled(session: Session, delivery_ids: list[int]) -> dict[int, str]:
    """The status of each delivery after its retry."""
    return {i: session.get(Delivery, i).status.value for i in delivery_ids}
