"""An administrator retries a failed HL7 delivery: same MSH-10, the PFI files the document once."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.delivery_retry import retry_delivery
from flows.report_lifecycle import report_lifecycle
from ris.operations.summary import report_summary
from ris.store.db import session_scope
from tests import factories

pytestmark = pytest.mark.slow


async def test_a_rejected_delivery_is_retried_with_the_same_control_id(pfi):
    with session_scope() as session:
        bundle = factories.validated_report(session)
    report_id, version = bundle.report.id, bundle.version.version
    pfi.fail_next("AR")
    assert (await report_lifecycle(report_id, version))["hl7"] == "failed"

    listed = CliRunner().invoke(app, ["delivery", "failed", "--json"])
    failed = json.loads(listed.stdout)
    assert {(f["report"], f["channel"]) for f in failed} >= {(report_id, "hl7"), (report_id, "dmp")}
    assert all(f["reason"] for f in failed)

    outcome = await retry_delivery(**factories.retry_request("10000000001", "PFI fixed", report_id=report_id))
    assert set(outcome.values()) == {"acknowledged"}
    control_ids = [r.control_id for r in pfi.received]
    assert len(control_ids) == 2 and control_ids[0] == control_ids[1]
    assert len(pfi.documents) == 1
    with session_scope() as session:
        channels = report_summary(session, report_id)["channels"]
    assert channels["hl7"] == "acknowledged"
    assert channels["dmp"] in ("sent", "acknowledged")  # back from failed: relayed again with the message


def test_retry_needs_one_report_or_the_batch_flag(db_url):
    result = CliRunner().invoke(app, ["delivery", "retry"])
    assert result.exit_code == 1 and "give one ID (a delivery or a report), or --all-failed" in result.stderr
    result = CliRunner().invoke(app, ["delivery", "retry", "CR-NONE"])
    assert result.exit_code == 1 and "ID CR-NONE: no delivery and no report has this id" in result.stderr
