"""What the Prefect UI shows of a report: after its run, a table artifact `report-<id>` with every
delivery's status and reason, and one `ris.delivery.<outcome>` event per outcome, ids only."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.report_lifecycle import report_lifecycle
from ris.store.db import session_scope
from tasks.report_state import artifact_key, publish_report_state
from tests import factories

pytestmark = pytest.mark.slow


@flow
async def _publish(report_id: str) -> int:
    return await publish_report_state(report_id)


async def _events(client, report_id: str) -> list[dict]:
    """The delivery events about one report, read back through the API as the UI does."""
    wanted = {"event": {"prefix": ["ris.delivery."]}, "related": {"id": [f"ris.report.{report_id}"]}}
    response = await client._client.post("/events/filter", json={"filter": wanted, "limit": 50})
    response.raise_for_status()
    return response.json()["events"]


async def test_the_ui_shows_each_delivery_and_each_outcome_once_with_ids_only(pfi):
    with session_scope() as session:
        bundle = factories.validated_report(session, qualified=False)
        report_id, patient = bundle.report.id, bundle.patient
        secrets = [patient.birth_name, patient.first_birth_given_name, patient.birth_date.strftime("%Y%m%d")]
    await report_lifecycle(report_id, 1)
    assert await _publish(report_id) >= 4
    assert await _publish(report_id) >= 4  # a second run refreshes the same artifact

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(report_id)]))
        )
        for _ in range(50):  # events are persisted in batches
            events = await _events(client, report_id)
            if events:
                break
            await asyncio.sleep(0.2)
    latest = artifacts[-1]
    table = json.loads(latest.data) if isinstance(latest.data, str) else latest.data
    by_channel = {row["channel"]: row for row in table}
    assert by_channel["hl7"]["status"] == "acknowledged"
    assert by_channel["dmp"]["status"] == "blocked" and "INS rule 28" in by_channel["dmp"]["reason"]
    assert {row["recipient"] for row in table} <= {"pfi", "dmp", "patient", "professional"}
    text = json.dumps(table, ensure_ascii=False) + json.dumps(events, ensure_ascii=False)
    assert not [s for s in secrets if s and s in text]
    outcomes = [(e["resource"]["prefect.resource.id"], e["event"]) for e in events]
    assert (f"ris.delivery.{by_channel['hl7']['delivery']}", "ris.delivery.acknowledged") in outcomes
    assert len(outcomes) == len(set(outcomes))  # published twice, recorded once
