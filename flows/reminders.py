"""report-reminders: remind the responsible radiologists of the reports that wait too long (RIS.CRR.06):
drafts and provisional reports past the site's delays, and announcements still not recorded past theirs.
Scheduled hourly (prefect.yaml); each report is reminded at most once per period, whatever the number of
runs or restarts. The result holds counts only. Without a mail sender saved, nothing is planned: the run
completes and its log says what to configure.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from prefect import flow

from flows.names import REMINDER_FLOW
from tasks.reminders import plan_reminders, send_reminder


@flow(name=REMINDER_FLOW, flow_run_name="report-reminders")
async def report_reminders(now: dt.datetime | None = None) -> dict:
    """Plan this period's reminders and send them; returns {planned, sent, failed, blocked, error}."""
    to_send = await plan_reminders(now)
    counts = {"planned": len(to_send), "sent": 0, "failed": 0, "blocked": 0, "pending": 0, "error": 0}
    states = await asyncio.gather(*(send_reminder(d, now, return_state=True) for d in to_send))
    for state in states:
        status = await state.aresult(raise_on_failure=False) if state.is_completed() else "error"
        counts[status] = counts.get(status, 0) + 1
    return counts
