"""What the Prefect UI shows of a report after each of its runs: a table artifact of its deliveries and
one event per delivery outcome, ids only (names, NIR, birth dates and addresses never reach Prefect)."""

from __future__ import annotations

import uuid

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from ris.store.db import unit_of_work
from ris.summary import operations_rows

OUTCOMES = ("acknowledged", "failed", "read")
EVENT_NAMESPACE = uuid.UUID("5c1d3f0e-8a4b-4f6e-9d2a-7b3c1e0f9a21")


def artifact_key(report_id: str) -> str:
    """`report-<id>`, in the characters artifact keys allow (lowercase letters, digits, dashes)."""
    return "report-" + "".join(c if c.isalnum() else "-" for c in report_id.lower())


@task(
    name="publish-report-state",
    task_run_name="publish-report-state-{report_id}",
    retries=2,
    retry_delay_seconds=2,
)
async def publish_report_state(report_id: str) -> int:
    """Refresh the report's table artifact and emit `ris.delivery.<outcome>` for each delivery outcome.
    An outcome's event id is derived from the delivery's idempotency key (unique for good, unlike a row
    id) and its status, so that the event is recorded once however many runs publish it. Returns the
    number of deliveries shown."""
    rows = await unit_of_work(operations_rows, report_id)
    await create_table_artifact(
        table=rows,
        key=artifact_key(report_id),
        description=f"Report {report_id}: every delivery, its status and reason (ids only)",
    )
    for row in rows:
        if row["status"] in OUTCOMES:
            emit_event(
                event=f"ris.delivery.{row['status']}",
                resource={
                    "prefect.resource.id": f"ris.delivery.{row['delivery']}",
                    "ris.channel": row["channel"],
                    "ris.action": row["action"],
                },
                related=[
                    {"prefect.resource.id": f"ris.report.{report_id}", "prefect.resource.role": "report"}
                ],
                id=uuid.uuid5(EVENT_NAMESPACE, f"{row['key']}:{row['status']}"),
            )
    return len(rows)
