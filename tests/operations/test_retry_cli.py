"""`ris delivery retry` and the retry deployment: bad requests refused in one line with nothing changed,
the run started with the parameters the UI shows, and the served deployment matching prefect.yaml."""

from __future__ import annotations

import asyncio
import re
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from deployments import RETRY_DEPLOYMENT, specs
from deployments.apply import apply_deployments
from ris.lifecycle import distribution
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Channel, DeliveryStatus, RetryRequest
from tests import factories

ADMIN = "10001234567"  # the demo's administrator (acting_users)
pytestmark = pytest.mark.usefixtures("acting_users")


def _failed_dmp() -> tuple[str, int]:
    """A report whose message the PFI filed and whose DMP copy a ZAM reported failed."""
    with session_scope() as session:
        rid = factories.validated_report(session).report.id
        distribution.plan_version(session, rid, 1, pfi=True)
        rows = {d.channel: d for d in deliveries.for_version(session, rid, 1)}
        deliveries.set_status(session, rows[Channel.hl7], DeliveryStatus.acknowledged, "ACK AA")
        deliveries.set_status(session, rows[Channel.dmp], DeliveryStatus.failed, "ZAM Z01: DMPClosed")
        return rid, rows[Channel.dmp].id


def _retry(*args: str):
    return CliRunner().invoke(app, ["delivery", "retry", *args])


def test_bad_requests_are_refused_in_one_line_and_change_nothing(db_url):
    rid, dmp = _failed_dmp()
    cases = [
        ((str(dmp), "--by", ADMIN), "--reason: why the delivery is retried is required"),
        ((str(dmp), "--reason", "x" * 201, "--by", ADMIN), "--reason: at most 200 characters"),
        (("--all-failed", "--since", "28/11/2026", "--reason", "r", "--by", ADMIN), "--since '28/11/2026'"),
        (("--all-failed", "--to", "a@b.fr", "--reason", "r", "--by", ADMIN), "--to: give the one delivery"),
        ((str(dmp), "--to", "a@b.fr", "--reason", "r", "--by", ADMIN), "--to: only an MSSanté copy"),
        (("NOPE", "--reason", "r", "--by", ADMIN), "ID NOPE: no delivery and no report has this id"),
        ((rid, "--all-failed", "--reason", "r", "--by", ADMIN), "give one ID (a delivery or a report)"),
        (
            ("--all-failed", "--channel", "reminder", "--reason", "r", "--by", ADMIN),
            "no failed reminder delivery",
        ),
    ]
    for args, message in cases:
        result = _retry(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    with session_scope() as session:
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "delivery.retry")).all() == []
        assert deliveries.failed(session, Channel.dmp, rid)[0].id == dmp


def test_the_cli_starts_the_retry_deployment_with_the_parameters_the_ui_shows(prefect_server, db_url):
    asyncio.run(apply_deployments("ops-retry-test"))
    rid, _ = _failed_dmp()
    result = _retry(rid, "--reason", "DMP reopened", "--by", ADMIN, "--max-concurrency", "2")
    assert result.exit_code == 0, result.output
    run_id = UUID(re.search(r"retry run ([0-9a-f-]{36}) started: 1 deliveries in 1 sends", result.stdout)[1])

    async def read():
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            deployment = await client.read_deployment_by_name(RETRY_DEPLOYMENT)
            await client.delete_flow_run(run_id)  # no worker serves this pool: leave nothing queued
            return run, deployment

    run, deployment = asyncio.run(read())
    with session_scope() as session:
        [request] = session.exec(select(RetryRequest)).all()
        requested = session.exec(
            select(AuditEntry).where(AuditEntry.action == "delivery.retry_requested")
        ).one()
    assert (request.actor, request.reason, request.report_id, request.new_address) == (
        ADMIN,
        "DMP reopened",
        rid,
        None,
    )
    assert (requested.actor, requested.object_id) == (ADMIN, str(request.id))
    assert run.parameters == {  # who asks and any new address are the request's, not the run's
        "request_id": request.id,
        "reason": "DMP reopened",
        "delivery_ids": None,
        "report_id": rid,
        "channel": None,
        "since": None,
        "max_concurrency": 2,
    }
    assert "retry:relay" in run.tags
    [spec] = [s for s in specs() if s["entrypoint"].startswith("flows.delivery_retry:")]
    assert deployment.parameters == spec["parameters"] == {"max_concurrency": 4}
    assert deployment.global_concurrency_limit.limit == spec["concurrency_limit"] == 1
    schema = deployment.parameter_openapi_schema
    assert not {"actor", "to"} & set(schema["properties"])  # no parameter names an actor or an address
    assert {
        "reason",
        "request_id",
        "delivery_ids",
        "report_id",
        "channel",
        "since",
        "max_concurrency",
    } <= set(schema["properties"])
