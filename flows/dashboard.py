"""dashboard: the RIS.TBB figures published daily (prefect.yaml) as a markdown artifact; by default
the previous year, the current year and each of their months (what the DSR asks for at least)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect import flow

from flows.names import DASHBOARD_FLOW
from tasks.dashboard import publish_dashboard


@flow(name=DASHBOARD_FLOW, flow_run_name="dashboard")
async def publish_dashboard_figures(
    period: Literal["year", "month", "week", "day"] = "month", since: dt.date | None = None
) -> dict:
    """Publish the figures per `period` (year, month, week, day) from `since` (default: 1 January of the
    previous year) to today."""
    return await publish_dashboard(period, since)
