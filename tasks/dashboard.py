"""The dashboard figures (RIS.TBB.01–03) published as a markdown artifact: a thin task around
`ris.operations.dashboard`. The artifact and the logs hold FINESS, RPPS of radiologists and counts only."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import acreate_markdown_artifact

from blocks.site import load_site_settings
from ris import clock
from ris.operations import dashboard, scheduled
from ris.store.db import unit_of_work
from tasks.run_context import run_logger, store_retries

ARTIFACT_KEY = "ris-dashboard"  # one key: the UI shows the latest figures and keeps the earlier ones


@task(name="publish-dashboard", task_run_name="publish-dashboard-{period}", **store_retries())
async def publish_dashboard(period: dashboard.Period, since: dt.date | None) -> dict:
    """Compute the figures per `period` from `since` (default: 1 January of the previous year) to today,
    days of the site's calendar, and publish them; returns {"rows", "artifact"} (the number of rows and
    the artifact id); none published before the site settings are saved (one line says so)."""
    log = run_logger(__name__)
    try:
        settings = await load_site_settings()  # the facility's FINESS and the site's calendar
    except scheduled.NotConfigured as exc:
        log.info("dashboard not published: %s", exc)
        return {"rows": 0, "artifact": None}
    today = clock.today(settings.timezone)
    since = since or dt.date(today.year - 1, 1, 1)
    rows = await unit_of_work(
        dashboard.compute,
        period=period,
        finess_geo=settings.facility.finess_geo,
        tz=settings.timezone,
        since=since,
        until=today,
    )
    years = await unit_of_work(
        dashboard.compute,
        period="year",
        finess_geo=settings.facility.finess_geo,
        tz=settings.timezone,
        since=since,
        until=today,
    )
    markdown = "\n".join(
        [
            dashboard.to_markdown(
                years, f"DMP feeds and MSSanté sends per year, {since or 'start'} to {today}"
            ),
            dashboard.to_markdown(rows, f"The same per {period}"),
        ]
    )
    artifact = await acreate_markdown_artifact(
        markdown, key=ARTIFACT_KEY, description=f"RIS.TBB dashboard per {period} up to {today}"
    )
    log.info("dashboard published: %s rows per %s, %s per year", len(rows), period, len(years))
    return {"rows": len(rows), "artifact": str(artifact)}
