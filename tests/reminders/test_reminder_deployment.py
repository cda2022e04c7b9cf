"""The reminder deployment as prefect.yaml declares it: hourly in Europe/Paris, one run at a time."""

from __future__ import annotations

from deployments import ENTRYPOINTS, REMINDER_DEPLOYMENT, specs
from flows.names import REMINDER_FLOW


def test_reminders_run_hourly_in_paris_time_one_at_a_time():
    spec = next(s for s in specs() if s["entrypoint"] == ENTRYPOINTS[REMINDER_FLOW])
    assert f"report-reminders/{spec['name']}" == REMINDER_DEPLOYMENT
    assert spec["schedules"] == [{"cron": "0 * * * *", "timezone": "Europe/Paris"}]
    assert spec["concurrency_limit"] == 1 and spec["tags"] == ["component:reminders"]
