"""The DMP exchange over real HTTPS with mutual TLS, without Prefect: the store side builds each request
(ITI-41, ITI-57, ITI-62) and the client posts it to the sandbox DMP, which checks and keeps it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from ris.channels.dmp import deliver
from ris.channels.dmp.client import DmpRefused, DmpTransient, post
from ris.documents.xds_metadata import read
from ris.lifecycle import reports
from ris.lifecycle.distribution import VISIBILITY, plan_direct_dmp_deletion, plan_release
from ris.store import deliveries
from ris.store.models import Delivery, DeliveryStatus
from ris.store.reports import load_bundle
from tests import factories
from tests.dmp.conftest import NOW, config_for, direct_settings, dmp_rows, signing_for, with_documents


async def send(session: Session, dmp, row_id: int, settings, **config) -> str:
    """One attempt as the task makes it: prepare, post, record; returns the status or the fault."""
    cfg = config_for(dmp, **config)
    attempt = deliver.prepare(session, row_id, settings, cfg, signing_for(dmp), now=NOW)
    session.commit()
    if attempt.request is None:
        return attempt.refused or attempt.status.value
    try:
        answer = await post(attempt.request, cfg)
    except DmpRefused as exc:
        deliveries.record_refused(session, row_id, exc.reason)
        session.commit()
        return exc.reason
    except DmpTransient as exc:
        deliveries.record_transient(session, row_id, exc.reason, give_up=False)
        session.commit()
        return f"transient: {exc.reason}"
    deliver.record_sent(session, row_id, answer)
    session.commit()
    return "acknowledged"


def fed(session: Session, dmp, settings=None, **kwargs):
    settings = settings or direct_settings()
    bundle = factories.validated_report(session, copies=0, **kwargs)
    cda = with_documents(session, bundle, settings)
    [row] = dmp_rows(session, bundle, settings)
    return settings, bundle, cda, row


async def test_initial_feed_is_registered_with_its_metadata_and_the_cda_as_sent(session, dmp, shared: Path):
    settings, _bundle, cda, row = fed(session, dmp)
    assert row.route == "direct" and row.status is DeliveryStatus.pending
    assert await send(session, dmp, row.id, settings) == "acknowledged"
    header = read(cda)
    entry = dmp.document(header.unique_id)
    assert entry is not None and entry.status == "Approved"
    assert entry.patient_id == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH" == header.patient_id
    assert entry.confidentiality == ["N"] and (entry.sha1, entry.size) == (header.sha1, len(cda))
    kept = dmp.folder / f"{header.unique_id}.xml"
    assert kept.read_bytes() == cda  # byte for byte what the engine stored
    [received] = [
        r
        for r in dmp.received
        if r.outcome == "Success" and r.file and entry.lid in r.file.read_text("latin-1")
    ]
    assert "BAL APPLICATIVE SANDBOX" in received.client_subject  # VIHF issuer = the TLS client certificate
    result = subprocess.run(
        [sys.executable, str(shared / "tools" / "cda_validate.py"), "-p", "all", "-q", str(kept)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and ": 0 errors" in result.stdout, result.stdout + result.stderr
    # Sent once: another attempt sends nothing.
    assert await send(session, dmp, row.id, settings) == "acknowledged"
    assert sum(1 for e in dmp.documents() if e.unique_id == header.unique_id) == 1


async def test_lost_answer_then_retry_leaves_exactly_one_document(session, dmp):
    settings, _bundle, cda, row = fed(session, dmp)
    dmp.lose_responses = 1
    first = await send(session, dmp, row.id, settings)
    assert first.startswith("transient: DMP connection fault")
    dmp.faults = 1  # then a 503 (Receiver fault)
    assert (await send(session, dmp, row.id, settings)).startswith("transient: DMP SOAP fault Receiver")
    assert await send(session, dmp, row.id, settings) == "acknowledged"
    session.refresh(row)
    assert row.attempts == 3
    unique_id = read(cda).unique_id
    assert [e.unique_id for e in dmp.documents()].count(unique_id) == 1
    replays = [r.outcome for r in dmp.received if r.outcome == "replay"]
    assert replays  # the same entryUUID and uniqueId came again: recognised, stored once


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ("closed", "DMP DMPClosed: the patient's DMP is closed"),
        ("unknown", "DMP XDSUnknownPatientId: the patient has no DMP"),
        ("duplicate", "DMP XDSDuplicateUniqueIdInRegistry: the DMP already holds another document"),
        ("metadata", "DMP XDSRegistryMetadataError: the DMP refused the document's metadata"),
    ],
)
async def test_registry_errors_fail_at_once_with_the_code(session, dmp, switch, expected):
    settings = direct_settings()
    if switch == "metadata":
        settings.facility.facility_type_code = "XX99"  # not a JDV_J61 code: the metadata are refused
    settings, _bundle, _cda, row = fed(session, dmp, settings)
    if switch == "closed":
        dmp.closed_patients.add("279035121518989")
    elif switch == "unknown":
        dmp.unknown_patients.add("279035121518989")
    elif switch == "duplicate":  # another entry already registered under this document id
        other = Delivery(
            **{**row.model_dump(exclude={"id"}), "idempotency_key": "0" * 31 + "1", "action": "x"}
        )
        session.add(other)
        session.commit()
        assert await send(session, dmp, other.id, settings) == "acknowledged"
    reason = await send(session, dmp, row.id, settings)
    assert reason.startswith(expected), reason
    session.refresh(row)
    assert row.status is DeliveryStatus.failed and row.attempts == 1 and row.reason.startswith(expected)


async def test_client_without_certificate_is_cut(session, dmp):
    settings, _bundle, cda, row = fed(session, dmp)
    result = await send(session, dmp, row.id, settings, client_cert=None, client_key=None)
    assert result.startswith("transient: DMP")
    assert dmp.document(read(cda).unique_id) is None


async def test_announcement_visibility_update_replacement_and_deletion(session, dmp):
    settings, bundle, cda, row = fed(session, dmp, announcement_required=True, mask_ps=True)
    assert await send(session, dmp, row.id, settings) == "acknowledged"
    first = dmp.document(read(cda).unique_id)
    assert first.visibility == ["MASQUE_PS", "INVISIBLE_PATIENT"]

    reports.record_announcement(session, bundle.report.id, factories.RADIOLOGIST_RPPS)
    session.commit()
    plan_release(session, bundle.report.id, 1)
    session.commit()
    [update] = [r for r in dmp_rows(session, bundle, settings) if r.action == VISIBILITY]
    assert await send(session, dmp, update.id, settings) == "acknowledged"
    assert first.visibility == ["MASQUE_PS"] and first.version == 2
    assert first.history == [["N", "MASQUE_PS", "INVISIBLE_PATIENT"]]

    reports.replace(
        session, bundle.report.id, "Texte corrigé.", "Conclusion corrigée.", factories.RADIOLOGIST_RPPS
    )
    session.commit()
    v2 = load_bundle(session, bundle.report.id, 2)
    cda2 = with_documents(session, v2, settings)
    [replacement] = [r for r in dmp_rows(session, v2, settings) if r.action == "replace"]
    assert await send(session, dmp, replacement.id, settings) == "acknowledged"
    second = dmp.document(read(cda2).unique_id)
    assert first.status == "Deprecated" and first.replaced_by == second.lid
    assert second.status == "Approved" and second.visibility == ["MASQUE_PS"]

    reports.delete(session, bundle.report.id, "examen d'un autre patient", factories.RADIOLOGIST_RPPS)
    session.commit()
    deletion = plan_direct_dmp_deletion(session, bundle.report.id, 2)
    session.commit()
    assert await send(session, dmp, deletion, settings) == "acknowledged"
    assert first.status == second.status == "Deleted"
    assert plan_direct_dmp_deletion(session, bundle.report.id, 2) is None  # once


async def test_blocked_feeds_never_leave(session, dmp):
    settings = direct_settings(blocked_exam_codes=["24727-0"])
    bundle = factories.validated_report(session, copies=0)
    with_documents(session, bundle, settings)
    [row] = dmp_rows(session, bundle, settings)
    assert row.status is DeliveryStatus.blocked and "exam type" in row.reason
    user = factories.validated_report(session, copies=0, dmp_blocked=True)
    [row] = dmp_rows(session, user, direct_settings())
    assert row.status is DeliveryStatus.blocked and "RIS.DMP.03" in row.reason
    # A block recorded after planning still counts when the copy leaves.
    late = factories.validated_report(session, copies=0)
    with_documents(session, late, settings)
    [row] = dmp_rows(session, late, direct_settings())
    late.report.dmp_blocked = True
    session.add(late.report)
    session.commit()
    assert await send(session, dmp, row.id, direct_settings()) == "blocked"
    session.refresh(row)
    assert row.reason == "at send time: DMP feed blocked by the user (RIS.DMP.03)"
    assert not [
        r
        for r in dmp.received
        if r.file and row.external_id and row.external_id in r.file.read_text("latin-1")
    ]
