"""Lifecycle step 1: may the patient's INS travel with this report version? (INS rule 28)"""

from __future__ import annotations

from prefect import task

from ris.identity import gate
from ris.store.db import unit_of_work
from tasks.run_context import store_retries


# Retried when the database was momentarily unavailable or locked, never on a rule or a bug.
@task(name="check-identity", task_run_name="check-identity-{report_id}-v{version}", **store_retries())
async def check_identity(report_id: str, version: int) -> dict:
    """Decide per patient-facing channel whether the INS may be used, audited; no health data returned."""
    return await unit_of_work(gate.check_version, report_id, version)
