"""End to end: the lifecycle flow on a real Prefect server, with the sandbox PFI and the ZAM listener on
loopback. Documents are built, deliveries planned once, the PFI gets one message per version, receipts
move the relayed channels, and nothing of the patient reaches Prefect."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from sqlmodel import select

from flows.report_lifecycle import report_lifecycle
from ris.operations.summary import report_summary
from ris.store.db import session_scope
from ris.store.models import Delivery, DeliveryStatus, Document
from tests import factories

pytestmark = pytest.mark.slow


def _validated(**kwargs) -> tuple[str, int, dict]:
    with session_scope() as session:
        bundle = factories.validated_report(session, **kwargs)
        patient = bundle.patient
        secrets = {
            "names": [patient.birth_name, patient.first_birth_given_name],
            "ins": patient.ins_matricule,
            "birth_date": patient.birth_date.strftime("%Y%m%d"),
        }
        return bundle.report.id, bundle.version.version, secrets


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


def _statuses(report_id: str) -> dict[str, str]:
    with session_scope() as session:
        return report_summary(session, report_id)["channels"]


def _no_sent_left(report_id: str) -> bool:
    with session_scope() as session:
        rows = session.exec(select(Delivery).where(Delivery.report_id == report_id)).all()
        return not any(r.status is DeliveryStatus.sent for r in rows)


async def test_a_qualified_report_reaches_every_channel(pfi):
    report_id, version, _ = _validated(copies=2)
    state = await report_lifecycle(report_id, version, return_state=True)
    assert state.is_completed(), state
    outcome = await state.result()
    assert outcome["hl7"] == "acknowledged" and outcome["ins_transmissible"] is True

    # The PFI relays each copy's receipts one after the other (acknowledged, then read): wait for the last.
    expected = {"dmp": "acknowledged", "mss-ps": "read", "mss-patient": "read", "hl7": "acknowledged"}
    with contextlib.suppress(TimeoutError):
        await _until(lambda: _statuses(report_id) == expected)
    assert _statuses(report_id) == expected

    assert len(pfi.documents) == 1
    message = next(iter(pfi.documents.values())).raw
    with session_scope() as session:
        document = session.exec(select(Document).where(Document.report_id == report_id)).one()
        key = session.exec(
            select(Delivery.idempotency_key).where(Delivery.report_id == report_id, Delivery.channel == "hl7")
        ).one()
    assert f"|{key}|" in message.split("\r")[0]  # MSH-10 is the delivery's idempotency key
    cda = base64.b64decode(re.search(r"\^text\^XML\^Base64\^([^|\r]+)", message).group(1))
    assert document.document_id.encode() in cda


async def test_rerunning_a_version_sends_nothing_twice(pfi):
    report_id, version, _ = _validated()
    first = await report_lifecycle(report_id, version)
    second = await report_lifecycle(report_id, version)
    assert first["document_id"] == second["document_id"]
    assert "hl7" not in second  # nothing pending: the flow does not even call the PFI task again
    assert second["planned"]["hl7"] == ["acknowledged"]
    assert len(pfi.documents) == 1 and pfi.duplicates == 0
    with session_scope() as session:
        assert (
            len(
                session.exec(
                    select(Delivery).where(Delivery.report_id == report_id, Delivery.channel == "hl7")
                ).all()
            )
            == 1
        )


async def test_an_unqualified_identity_keeps_its_ins_at_home(pfi):
    report_id, version, _ = _validated(qualified=False)
    outcome = await report_lifecycle(report_id, version)
    assert outcome["ins_transmissible"] is False
    await _until(lambda: _no_sent_left(report_id))
    with session_scope() as session:
        summary = report_summary(session, report_id)
    assert summary["channels"]["dmp"] == "blocked"
    assert summary["channels"]["mss-patient"] == "blocked"
    assert "INS rule 28" in summary["reasons"]["dmp"]
    assert summary["channels"]["mss-ps"] in ("acknowledged", "read")
    message = next(iter(pfi.documents.values())).raw
    assert "ASIP-SANTE-INS" not in message and "@patient.mssante.fr" not in message


async def test_a_rejected_message_fails_at_once_with_its_reason(pfi):
    report_id, version, _ = _validated()
    pfi.fail_next("AR")
    outcome = await report_lifecycle(report_id, version)
    assert outcome["hl7"] == "failed"
    with session_scope() as session:
        summary = report_summary(session, report_id)
    assert summary["channels"]["hl7"] == "failed" and summary["reasons"]["hl7"]
    assert len(pfi.received) == 1  # AR is not retried


async def test_runs_are_named_by_ids_and_carry_no_health_data(pfi):
    report_id, version, secrets = _validated()
    state = await report_lifecycle(report_id, version, return_state=True)
    run_id = state.state_details.flow_run_id
    await APILogHandler.aflush()  # logs reach the API in batches: send what is queued before reading
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
        async with asyncio.timeout(10):
            while not (logs := await client.read_logs(log_filter=log_filter)):
                await asyncio.sleep(0.2)
        task_runs = await client.read_task_runs()
    assert runs[0].name == f"report-{report_id}-v{version}"
    visible = " ".join(
        [
            runs[0].name,
            *runs[0].tags,
            *(log.message for log in logs),
            *(t.name for t in task_runs),
            str(await state.result()),
        ]
    )
    for secret in [*secrets["names"], secrets["ins"], secrets["birth_date"]]:
        assert secret not in visible
