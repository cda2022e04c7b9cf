"""End to end over real sockets: the lifecycle, announcement, replacement and deletion flows on a Prefect
server feed the sandbox DMP directly (HTTPS, mutual TLS, signed VIHF), the PFI relaying the rest."""

from __future__ import annotations

import pytest
from sqlmodel import select

from flows.announcement import announcement_release
from flows.report_deletion import report_deletion
from flows.report_lifecycle import report_lifecycle
from ris.documents.xds_metadata import read
from ris.lifecycle import reports
from ris.operations.summary import report_summary
from ris.store import blobs
from ris.store import documents as stored_documents
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from tests import factories

pytestmark = pytest.mark.slow


def _validated(**kwargs) -> tuple[str, int]:
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0, **kwargs)
        return bundle.report.id, bundle.version.version


def _dmp_rows(report_id: str) -> list[Delivery]:
    with session_scope() as session:
        rows = session.exec(select(Delivery).where(Delivery.report_id == report_id)).all()
        return [r for r in rows if r.channel is Channel.dmp]


def _unique_id(report_id: str, version: int) -> str:
    with session_scope() as session:
        document = stored_documents.find(session, report_id, version)
        return read(blobs.get(session, document.cda_sha256)).unique_id


async def test_feed_visibility_update_replacement_and_deletion(direct_site):
    dmp = direct_site
    report_id, version = _validated(announcement_required=True)
    outcome = await report_lifecycle(report_id, version)
    assert list(outcome["dmp"].values()) == ["acknowledged"]
    first = dmp.document(_unique_id(report_id, 1))
    assert first.visibility == ["INVISIBLE_PATIENT"]
    await report_lifecycle(report_id, version)  # a second run sends nothing again
    assert len([r for r in dmp.received if r.file and first.lid in r.file.read_text("latin-1")]) == 1

    with session_scope() as session:
        reports.record_announcement(session, report_id, factories.RADIOLOGIST_RPPS)
    released = await announcement_release(report_id, version)
    assert [v for k, v in released.items() if k.startswith("dmp-")] == ["acknowledged"]
    assert first.visibility == [] and first.version == 2

    with session_scope() as session:
        reports.replace(session, report_id, "Texte corrigé.", None, factories.RADIOLOGIST_RPPS)
    await report_lifecycle(report_id, 2)
    second = dmp.document(_unique_id(report_id, 2))
    assert first.status == "Deprecated" and second.status == "Approved" and first.replaced_by == second.lid

    with session_scope() as session:
        reports.delete(session, report_id, "examen d'un autre patient", factories.RADIOLOGIST_RPPS)
    await report_deletion(report_id, 2)
    assert first.status == second.status == "Deleted"
    rows = {(r.version, r.action): r.status for r in _dmp_rows(report_id)}
    assert rows == {
        (1, "initial"): DeliveryStatus.acknowledged,
        (1, "visibility"): DeliveryStatus.acknowledged,
        (2, "replace"): DeliveryStatus.acknowledged,
        (2, "delete"): DeliveryStatus.acknowledged,
    }
    with session_scope() as session:
        assert report_summary(session, report_id)["channels"]["dmp"] == "acknowledged"


async def test_a_fault_then_the_retry_leaves_one_document(direct_site):
    dmp = direct_site
    report_id, version = _validated()
    dmp.lose_responses = 1  # registered, but the answer is lost: the retry is a replay
    await report_lifecycle(report_id, version)
    [row] = _dmp_rows(report_id)
    assert row.status is DeliveryStatus.acknowledged and row.attempts == 2
    unique_id = _unique_id(report_id, version)
    assert [e.unique_id for e in dmp.documents()].count(unique_id) == 1


async def test_blocked_feed_and_closed_dmp(direct_site):
    dmp = direct_site
    blocked, version = _validated(dmp_blocked=True)
    outcome = await report_lifecycle(blocked, version)
    assert "dmp" not in outcome
    [row] = _dmp_rows(blocked)
    assert row.status is DeliveryStatus.blocked and row.attempts == 0
    dmp.closed_patients.add("279035121518989")
    closed, version = _validated()
    await report_lifecycle(closed, version)
    [row] = _dmp_rows(closed)
    assert row.status is DeliveryStatus.failed and row.attempts == 1
    assert row.reason == "DMP DMPClosed: the patient's DMP is closed (DMP fermé)"
