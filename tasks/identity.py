"""Lifecycle step 1: may the patient's INS travel with this report version? (INS rule 28)"""

from __future__ import annotations

import sqlalchemy as sa
from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from ris.identity import gate
from ris.store import audit
from ris.store.db import session_scope
from ris.store.reports import load_bundle

# Patient-facing uses of the INS decided here: the CDA recordTarget, the DMP feed, the patient's mailbox.
PATIENT_FACING = ("cda", "dmp", "mss-patient")


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
    """Decide per patient-facing channel whether the INS may be used; record the decision in the audit
    trail. The result carries no health data: a flag and the reason in the user's terms."""
    with session_scope() as session:
        bundle = load_bundle(session, report_id, version)
        allowed = gate.ins_transmissible(bundle.patient)
        reason = gate.ins_refusal_reason(bundle.patient)
        channels = {channel: allowed for channel in PATIENT_FACING}
        audit.record(
            session,
            actor="engine",
            action="identity.check",
            object_type="report",
            object_id=report_id,
            version=version,
            patient_id=bundle.patient.id,
            ins_transmissible=allowed,
            reason=reason,
            channels=channels,
        )
    return {"ins_transmissible": allowed, "reason": reason, "channels": channels}
