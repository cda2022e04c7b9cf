"""The state of a report as people see it: one status per channel, with the reason when blocked or failed."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import get_report

# How far a delivery got; a channel with several recipients shows its least advanced one.
PROGRESS = [
    DeliveryStatus.waiting_announcement,
    DeliveryStatus.pending,
    DeliveryStatus.sent,
    DeliveryStatus.acknowledged,
    DeliveryStatus.read,
]


# The channels a report is distributed on; `reminder` mails go to the site's own radiologists.
DISTRIBUTION = tuple(c for c in Channel if c is not Channel.reminder)


def channel_status(rows: list[Delivery], planned: bool) -> tuple[DeliveryStatus, str | None]:
    if not rows:
        if planned:
            return DeliveryStatus.blocked, "no recipient on this channel"
        return DeliveryStatus.pending, None
    failed = [r for r in rows if r.status is DeliveryStatus.failed]
    if failed:
        return DeliveryStatus.failed, failed[0].reason
    live = [r for r in rows if r.status is not DeliveryStatus.blocked]
    if not live:
        return DeliveryStatus.blocked, rows[0].reason
    return min((r.status for r in live), key=PROGRESS.index), None


def report_summary(session: Session, report_id: str, *, with_timeline: bool = False) -> dict[str, Any]:
    """`{"id", "version", "status", "channels": {CHANNEL: STATUS}, "reasons": {CHANNEL: REASON}}`."""
    report = get_report(session, report_id)
    rows = deliveries.for_version(session, report.id, report.version) if report.version else []
    rows = [r for r in rows if r.channel is not Channel.reminder]  # reminders are not distribution
    planned = bool(rows)
    channels: dict[str, str] = {}
    reasons: dict[str, str] = {}
    unvalidated = f"report is {report.status.value}: nothing leaves the RIS" if report.version == 0 else None
    for channel in DISTRIBUTION:
        if unvalidated:
            status, reason = DeliveryStatus.blocked, unvalidated
        else:
            status, reason = channel_status([r for r in rows if r.channel is channel], planned)
        channels[channel.value] = status.value
        if reason and status in (DeliveryStatus.blocked, DeliveryStatus.failed):
            reasons[channel.value] = reason
    summary: dict[str, Any] = {
        "id": report.id,
        "version": report.version,
        "status": report.status.value,
        "channels": channels,
        "reasons": reasons,
    }
    if with_timeline:
        summary["announcement"] = {
            "required": report.announcement_required,
            "recorded_at": report.announcement_recorded_at.isoformat()
            if report.announcement_recorded_at
            else None,
            "recorded_by": report.announcement_recorded_by,
        }
        summary["deliveries"] = [
            {
                "channel": r.channel.value,
                "action": r.action,
                "recipient": r.recipient,
                "route": r.route,
                "status": r.status.value,
                "reason": r.reason,
                "attempts": r.attempts,
                "external_id": r.external_id,
                "timeline": [
                    {"at": e.at.isoformat(), "status": e.status.value, "detail": e.detail}
                    for e in deliveries.timeline(session, r.id)
                ],
            }
            for r in rows
        ]
        reminders = deliveries.reminders(session, report.id)
        if reminders:  # only reports that were reminded carry the key: the shared shape stays as it was
            summary["reminders"] = [
                {
                    "action": r.action,
                    "version": r.version,
                    "status": r.status.value,
                    "reason": r.reason,
                    "timeline": [
                        {"at": e.at.isoformat(), "status": e.status.value, "detail": e.detail}
                        for e in deliveries.timeline(session, r.id)
                    ],
                }
                for r in reminders
            ]
    return summary


def recipient_kind(row: Delivery) -> str:
    """Who a delivery is for, without the address (the operations plane shows ids only)."""
    if row.channel is Channel.mss_ps:
        return "professional"
    return row.recipient if row.recipient in ("pfi", "dmp", "patient") else row.channel.value


def operations_rows(session: Session, report_id: str) -> list[dict[str, Any]]:
    """Every delivery of the report, every version, as the Prefect UI shows it: ids, statuses, reasons
    and times only (no address, no name)."""
    rows = deliveries.for_report(session, report_id)
    return [
        {
            "delivery": r.id,
            "key": r.idempotency_key,  # MSH-10 / Message-ID: what the peers' logs show
            "version": r.version,
            "channel": r.channel.value,
            "action": r.action,
            "recipient": recipient_kind(r),
            "route": r.route,
            "status": r.status.value,
            "reason": r.reason or "",
            "attempts": r.attempts,
            "updated": r.updated_at.isoformat(timespec="seconds"),
        }
        for r in rows
    ]
