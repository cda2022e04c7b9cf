"""Dashboard figures (RIS.TBB.01–03): how many reports were fed to the DMP and sent by MSSanté to
professionals and to patients, with and without a qualified INS, how many cases (patients) got them, and
how many sends failed; per period, per FINESS géographique and per radiologist (RPPS of the validator).

Computed from the delivery rows and their status timelines only (never from names or identities):
- a report counts as fed / sent on a channel once one of its deliveries on that channel reached
  `acknowledged` or `read` (for route "pfi", the PFI's ZAM receipts moved it there), in the period of that
  first success, for the radiologist who validated the version that got through;
- "INS qualifiée" is the patient's identity status at that moment (the status history, rule 21);
- a failure is a send (one delivery: one version to one recipient) whose timeline holds a `failed` event,
  counted in the period of its first failure, even if an administrator's retry later got it through;
- deletions of a published document (action "delete") are not feeds and are not counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from ris import clock
from ris.store.models import (
    Channel,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Exam,
    IdentityStatus,
    IdentityStatusChange,
    Patient,
    Report,
    ReportVersion,
)

Period = Literal["year", "month", "week", "day"]
PERIODS: tuple[Period, ...] = ("year", "month", "week", "day")
ALL_RADIOLOGISTS = "all"
# Dashboard name of each counted channel (the HL7 message to the PFI is transport, not a recipient).
COUNTED = {Channel.dmp: "dmp_fed", Channel.mss_ps: "mss_ps_sent", Channel.mss_patient: "mss_patient_sent"}
FAILURES = {
    Channel.dmp: "dmp_failed",
    Channel.mss_ps: "mss_ps_failed",
    Channel.mss_patient: "mss_patient_failed",
}
CASES = {Channel.dmp: "cases_dmp", Channel.mss_ps: "cases_mss_ps", Channel.mss_patient: "cases_mss_patient"}
REACHED = (DeliveryStatus.acknowledged, DeliveryStatus.read)
METRICS: tuple[str, ...] = (
    *(
        f"{name}{suffix}"
        for name in COUNTED.values()
        for suffix in ("", "_ins_qualified", "_ins_not_qualified")
    ),
    "dmp_fed_masked_ps",
    *FAILURES.values(),
    *CASES.values(),
    "cases_any",
    "cases_all_three",
)


def period_key(at: dt.datetime, period: Period, tz: ZoneInfo) -> str:
    """The calendar period of an instant, in the site's time zone: 2025, 2025-03, 2025-W11, 2025-03-14."""
    local = clock.local(at, tz)
    if period == "year":
        return f"{local:%Y}"
    if period == "month":
        return f"{local:%Y-%m}"
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


@dataclass
class _Send:
    """One counted delivery and what its timeline says."""

    report_id: str
    channel: Channel
    validator_rpps: str
    patient_id: int
    masked_ps: bool
    reached_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None


@dataclass
class _Bucket:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRICS, 0))
    cases: dict[Channel, set[int]] = field(default_factory=lambda: defaultdict(set))


def _sends(session: Session) -> list[_Send]:
    stmt = (
        select(
            Delivery.id,
            Delivery.report_id,
            Delivery.channel,
            ReportVersion.validator_rpps,
            Exam.patient_id,
            Report.mask_ps,
        )
        .join(
            ReportVersion,
            (ReportVersion.report_id == Delivery.report_id) & (ReportVersion.version == Delivery.version),
        )
        .join(Report, Report.id == Delivery.report_id)
        .join(Exam, Exam.id == Report.exam_id)
        .where(Delivery.channel.in_(list(COUNTED)), Delivery.action != "delete")
    )
    sends = {row[0]: _Send(*row[1:]) for row in session.exec(stmt)}
    events = select(DeliveryEvent.delivery_id, DeliveryEvent.status, DeliveryEvent.at).where(
        DeliveryEvent.status.in_([*REACHED, DeliveryStatus.failed])
    )
    for delivery_id, status, at in session.exec(events.order_by(DeliveryEvent.at, DeliveryEvent.id)):
        send = sends.get(delivery_id)
        if send is None:
            continue
        if status is DeliveryStatus.failed:
            send.failed_at = send.failed_at or clock.aware(at)
        else:
            send.reached_at = send.reached_at or clock.aware(at)
    return list(sends.values())


class _StatusHistory:
    """The identity status of a patient at a given moment, from the status history (rule 21)."""

    def __init__(self, session: Session, patient_ids: Iterable[int]) -> None:
        ids = sorted(set(patient_ids))
        current = session.exec(select(Patient.id, Patient.status).where(Patient.id.in_(ids)))
        self._current = {patient_id: status for patient_id, status in current}
        self._changes: dict[int, list[tuple[dt.datetime, IdentityStatus | None, IdentityStatus]]] = (
            defaultdict(list)
        )
        changes = select(
            IdentityStatusChange.patient_id,
            IdentityStatusChange.at,
            IdentityStatusChange.previous,
            IdentityStatusChange.new,
        ).where(IdentityStatusChange.patient_id.in_(ids))
        for patient_id, at, previous, new in session.exec(changes.order_by(IdentityStatusChange.at)):
            self._changes[patient_id].append((clock.aware(at), previous, new))

    def qualified_at(self, patient_id: int, at: dt.datetime) -> bool:
        changes = self._changes.get(patient_id)
        if not changes:
            return self._current.get(patient_id) is IdentityStatus.QUAL
        before = [new for when, _, new in changes if when <= at]
        status = before[-1] if before else (changes[0][1] or changes[0][2])
        return status is IdentityStatus.QUAL


def compute(
    session: Session,
    *,
    period: Period,
    finess_geo: str,
    tz: str = "Europe/Paris",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[dict[str, object]]:
    """One row per period and radiologist, plus an `all` row per period, newest period first; each row is
    `{"period", "finess_geo", "rpps", <METRICS>}`. `since` / `until` bound the days (inclusive, local)."""
    zone = ZoneInfo(tz)
    sends = _sends(session)
    history = _StatusHistory(session, (s.patient_id for s in sends))

    def in_range(at: dt.datetime) -> bool:
        day = clock.local_day(at, zone)
        return (since is None or day >= since) and (until is None or day <= until)

    # The first success of each report on each channel: (report, channel) -> the send that got through.
    first_success: dict[tuple[str, Channel], _Send] = {}
    for send in sends:
        if send.reached_at is None:
            continue
        key = (send.report_id, send.channel)
        if key not in first_success or send.reached_at < first_success[key].reached_at:
            first_success[key] = send

    buckets: dict[tuple[str, str], _Bucket] = defaultdict(_Bucket)

    def touch(at: dt.datetime, rpps: str) -> Iterable[_Bucket]:
        key = period_key(at, period, zone)
        return (buckets[(key, rpps)], buckets[(key, ALL_RADIOLOGISTS)])

    for send in first_success.values():
        if not in_range(send.reached_at):
            continue
        name = COUNTED[send.channel]
        ins = (
            "_ins_qualified"
            if history.qualified_at(send.patient_id, send.reached_at)
            else "_ins_not_qualified"
        )
        for bucket in touch(send.reached_at, send.validator_rpps):
            bucket.counts[name] += 1
            bucket.counts[name + ins] += 1
            bucket.counts["dmp_fed_masked_ps"] += send.channel is Channel.dmp and send.masked_ps
            bucket.cases[send.channel].add(send.patient_id)
    for send in sends:
        if send.failed_at is not None and in_range(send.failed_at):
            for bucket in touch(send.failed_at, send.validator_rpps):
                bucket.counts[FAILURES[send.channel]] += 1

    rows = []
    for (key, rpps), bucket in buckets.items():
        for channel, name in CASES.items():
            bucket.counts[name] = len(bucket.cases[channel])
        bucket.counts["cases_any"] = len(set.union(*(bucket.cases[c] for c in CASES)))
        bucket.counts["cases_all_three"] = len(set.intersection(*(bucket.cases[c] for c in CASES)))
        rows.append({"period": key, "finess_geo": finess_geo, "rpps": rpps, **bucket.counts})
    rows.sort(key=lambda r: (r["rpps"] != ALL_RADIOLOGISTS, r["rpps"]))
    rows.sort(key=lambda r: r["period"], reverse=True)
    return rows


COLUMNS: tuple[str, ...] = ("period", "finess_geo", "rpps", *METRICS)


def to_csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# Short column titles for the tables people read (the CSV / JSON keep the full metric names).
TITLES = {
    "dmp_fed": "DMP",
    "dmp_fed_ins_qualified": "DMP INSq",
    "dmp_fed_ins_not_qualified": "DMP non-q",
    "mss_ps_sent": "MSS PS",
    "mss_ps_sent_ins_qualified": "PS INSq",
    "mss_ps_sent_ins_not_qualified": "PS non-q",
    "mss_patient_sent": "MSS pat.",
    "mss_patient_sent_ins_qualified": "pat. INSq",
    "mss_patient_sent_ins_not_qualified": "pat. non-q",
    "dmp_failed": "DMP fail",
    "mss_ps_failed": "PS fail",
    "mss_patient_failed": "pat. fail",
    "cases_dmp": "cases DMP",
    "cases_mss_ps": "cases PS",
    "cases_mss_patient": "cases pat.",
    "dmp_fed_masked_ps": "DMP masked",
    "cases_any": "cases any",
    "cases_all_three": "cases x3",
}


def to_markdown(rows: list[dict[str, object]], title: str) -> str:
    """A markdown table (the daily artifact): ids and counts only, never a patient."""
    header = ["period", "FINESS géo", "RPPS", *(TITLES[m] for m in METRICS)]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    if not rows:
        lines.append("")
        lines.append("No DMP feed, MSSanté send or failure in this period.")
    return "\n".join(lines) + "\n"


def to_table(rows: list[dict[str, object]]) -> str:
    """Fixed-width text for a terminal."""
    widths = {c: max(len(TITLES.get(c, c)), *(len(str(r[c])) for r in rows)) for c in COLUMNS} if rows else {}
    if not rows:
        return "no DMP feed, MSSanté send or failure in this period"
    head = "  ".join(TITLES.get(c, c).rjust(widths[c]) for c in COLUMNS)
    body = ["  ".join(str(r[c]).rjust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join([head, "-" * len(head), *body])
