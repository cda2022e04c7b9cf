"""Lifecycle step 1: may the patient's INS travel with this report version? (INS rule 28)"""

from __future__ import annotations

import sqlalchemy as sa
from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from ris.identity import gate
from ris.store.db import unit_of_work


def _transient_db_error(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry only when the database was momentarily unavailable or locked, never on a rule or a bug."""
    try:
        state.result()
    except sa.exc.OperationalError:
        return True
    except sa.exc.DBAPIError as exc:
        return bool(exc.connection_invalidated)
    except Exception:
        return False
    return False


@task(
    name="check-identity",
    task_run_name="check-identity-{report_id}-v{version}",
    retries=3,
    retry_delay_seconds=[1, 4, 10],
    retry_condition_fn=_transient_db_error,
)
async def check_identity(report_id: str, version: int) -> dict:
    """Decide per patient-facing channel whether the INS may be used, audited; no health data returned."""
    return await unit_of_work(gate.check_version, report_id, version)
