"""portability-export (RIS.PORT.01): the health-data history exported as JSON Lines, JSON Schemas and the
documents (CDA, PDF), nightly by the schedule of prefect.yaml, or on demand from the UI or a scheduler
with the parameters (`rpps`: one professional's reports only). The result holds the folder and counts
only."""

from __future__ import annotations

import datetime as dt

from prefect import flow

from flows.names import EXPORT_FLOW
from tasks.export import write_portability_export


@flow(name=EXPORT_FLOW, flow_run_name="portability-export")
async def portability_export(
    out: str | None = None, since: dt.date | None = None, rpps: str | None = None
) -> dict:
    """Export into `out` (a new or empty folder on the worker; default: a new folder under the engine's
    data folder, `exports/<timestamp>`), the history since `since` (default: all of it), of the
    professional `rpps` only when given (RIS.PORT.01: the reports they produced or received)."""
    return await write_portability_export(out, since, rpps)
