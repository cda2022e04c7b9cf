"""How long the Prefect server keeps what it records: the engine's site setting
(RIS_ORCHESTRATION_RETENTION_DAYS, ris.site.engine) turned into the server's own settings.

Prefect keeps every flow run, task run, state, log, artifact and event for ever unless told otherwise
(its vacuum service deletes only events, after 7 days, by default). Its `db_vacuum` service, told to, also
deletes the finished flow runs older than the retention (their task runs and states with them, then
their logs and artifacts) and, in the same hourly round, the older events and their resources. Runs still
in progress are never deleted, whatever their age.
"""

from __future__ import annotations

from ris.site.engine import orchestration_retention_days


def retention_settings(days: int) -> dict[str, str]:
    """The Prefect server's environment for a retention of `days` days (ISO 8601 durations, which both
    settings read)."""
    period = f"P{days}D"
    return {
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,flow_runs",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": period,
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": period,
    }


def site_retention_settings() -> dict[str, str]:
    """The server's retention settings for the site's RIS_ORCHESTRATION_RETENTION_DAYS."""
    return retention_settings(orchestration_retention_days())
