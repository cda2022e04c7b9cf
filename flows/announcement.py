"""After "annonce réalisée": release what the announcement held back (RIS.CRR.03).

Nothing waits in a process or an open flow run: the state of record is the engine's database (the
patient copy planned `waiting_announcement`); this run starts when the announcement is recorded. It runs
after the version's lifecycle run (one claim per version), so it always sees the own message's outcome.
"""

from __future__ import annotations

from prefect import flow

from flows.names import ANNOUNCEMENT_FLOW
from flows.release import release_announced
from tasks.report_state import publish_report_state


@flow(
    name=ANNOUNCEMENT_FLOW,
    flow_run_name="announce-{report_id}-v{version}",
    log_prints=False,
    persist_result=False,
)
async def announcement_release(report_id: str, version: int) -> dict[str, str]:
    """The DMP copy made visible to the patient and the patient's mail (ids only in the run)."""
    released = await release_announced(report_id, version)
    await publish_report_state(report_id)
    return released
