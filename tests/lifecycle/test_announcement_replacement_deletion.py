"""End to end over real sockets (Prefect server, sandbox PFI, our ZAM listener): an announcement releases
one visibility update and one patient copy; a replacement reaches every channel that had version 1, once,
as T10 with RPLC and TXA-13; a deletion goes where the report went and nowhere else; an identity
downgraded between build and retry never lets its INS leave. What the PFI got is read from the sandbox's
own record (its parser of every message it filed)."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys

import pytest
from lxml import etree
from sqlmodel import select

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from flows.announcement import announcement_release
from flows.delivery_retry import retry_delivery
from flows.report_deletion import report_deletion
from flows.report_lifecycle import report_lifecycle
from ris.channels.hl7.vocabulary import METADATA
from ris.documents.cda import carries_ins
from ris.lifecycle import refusals, reports
from ris.operations.summary import report_summary
from ris.site.settings import Hl7Routing, SiteSettings
from ris.store import blobs
from ris.store.db import session_scope
from ris.store.documents import find
from ris.store.models import AuditEntry, Delivery, DeliveryStatus, IdentityStatus, Report
from ris.store.reports import load_bundle
from sandbox.pfi.checks import check
from tests import factories

pytestmark = pytest.mark.slow

HL7 = {"h": "urn:hl7-org:v3"}


def _validated(**fields) -> tuple[str, int]:
    with session_scope() as session:
        bundle = factories.validated_report(session, **fields)
        return bundle.report.id, bundle.version.version


def _filed(pfi) -> list:
    """What the PFI filed, in order, as its own parser read it (trigger, flags, CDA)."""
    facts = []
    for entry in pfi.received:
        if entry.answer == "AA" and not entry.duplicate:
            parsed, problem = check(entry.raw, matrix_check=False)
            assert problem is None, problem
            facts.append((parsed, entry.raw))
    return facts


def _segment(raw: str, name: str) -> list[str]:
    return next(s for s in raw.split("\r") if s.startswith(name + "|")).split("|")


def _flags(facts) -> str:
    """The eight metadata flags in OBX order (MASQUE_PS … DESTMSSANTEPAT), as the PFI read them."""
    return "".join(facts.flags.get(code, "?") for code, _ in METADATA)


async def _settled(report_id: str, timeout: float = 15) -> dict[str, str]:
    """The channels once no relayed copy is left `sent` (the PFI's receipts came back)."""
    async with asyncio.timeout(timeout):
        while True:
            with session_scope() as session:
                rows = session.exec(select(Delivery).where(Delivery.report_id == report_id)).all()
                if not any(r.status is DeliveryStatus.sent for r in rows):
                    return report_summary(session, report_id)["channels"]
            await asyncio.sleep(0.1)


async def test_an_announcement_releases_one_visibility_update_and_one_patient_copy(pfi):
    report_id, version = _validated(announcement_required=True)
    outcome = await report_lifecycle(report_id, version)
    assert "released" not in outcome  # nothing to release before the announcement: no release step
    channels = await _settled(report_id)
    assert channels["mss-patient"] == "waiting_announcement" and channels["dmp"] == "acknowledged"
    [(initial, _)] = _filed(pfi)
    assert initial.trigger == "T02" and initial.flags["INVISIBLE_PATIENT"] == "Y"
    assert initial.flags["DESTMSSANTEPAT"] == "N" and initial.flags["DESTDMP"] == "Y"

    with session_scope() as session:
        reports.record_announcement(session, report_id, factories.RADIOLOGIST_RPPS)
    released = await announcement_release(report_id, version)
    again = await announcement_release(report_id, version)  # a second run sends nothing more

    assert released == {"visibility": "acknowledged", "release": "acknowledged"}
    assert again == {"visibility": "acknowledged", "release": "acknowledged"}
    filed = _filed(pfi)
    assert len(filed) == 3 and pfi.duplicates == 0
    (visibility, v_raw), (release, r_raw) = filed[1:]
    assert (visibility.trigger, release.trigger) == ("T10", "T10")
    assert _flags(visibility) == "NNNNYYNN"  # the DMP copy made visible, nobody mailed
    assert _flags(release) == "NNNNYNNY"  # the patient's copy only (matrix row 3)
    for raw in (v_raw, r_raw):
        assert _segment(raw, "ORC")[1] == "RO" and _segment(raw, "TXA")[13] == _segment(raw, "TXA")[12]
    assert sum(f.flags["DESTMSSANTEPAT"] == "Y" for f, _ in filed) == 1
    channels = await _settled(report_id)
    assert channels["mss-patient"] in ("acknowledged", "read") and channels["dmp"] == "acknowledged"
    with session_scope() as session:
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "report.announce")).all()
        assert [a.object_id for a in audit].count(report_id) == 1
        shown = report_summary(session, report_id, with_timeline=True)
    assert shown["announcement"]["recorded_by"] == factories.RADIOLOGIST_RPPS


async def test_an_announcement_recorded_before_the_lifecycle_sends_one_visible_message(pfi):
    report_id, version = _validated(announcement_required=True)
    with session_scope() as session:
        reports.record_announcement(session, report_id, factories.RADIOLOGIST_RPPS)
    await announcement_release(report_id, version)  # its run came first: nothing was filed yet
    assert _filed(pfi) == []
    await report_lifecycle(report_id, version)
    [(initial, _)] = _filed(pfi)
    assert initial.flags["INVISIBLE_PATIENT"] == "N" and initial.flags["DESTMSSANTEPAT"] == "Y"


async def test_a_replacement_reaches_every_channel_that_had_version_1_once(pfi, shared, tmp_path):
    report_id, _ = _validated(copies=2)
    await report_lifecycle(report_id, 1)
    before = await _settled(report_id)
    with session_scope() as session:
        with pytest.raises(reports.ReportRuleError, match="unknown radiologist"):
            reports.replace(session, report_id, "Texte corrigé.", None, "19999999999")
        version = reports.replace(
            session,
            report_id,
            "Résultats corrigés : pas de lésion.",
            "Examen normal.",
            factories.RADIOLOGIST_RPPS,
        ).version
        v1_id = find(session, report_id, 1).document_id
    assert version == 2

    await report_lifecycle(report_id, version)
    await report_lifecycle(report_id, version)  # a second run sends nothing twice
    after = await _settled(report_id)

    filed = _filed(pfi)
    assert len(filed) == 2 and pfi.duplicates == 0
    (initial, _), (replacement, raw) = filed
    assert replacement.trigger == "T10" and _segment(raw, "ORC")[1] == "RO"
    assert _segment(raw, "TXA")[13] == v1_id
    assert [r.address for r in replacement.recipients] == [r.address for r in initial.recipients]
    assert {k: replacement.flags[k] for k in ("DESTDMP", "DESTMSSANTEPS", "DESTMSSANTEPAT")} == {
        k: initial.flags[k] for k in ("DESTDMP", "DESTMSSANTEPS", "DESTMSSANTEPAT")
    }
    assert set(after.values()) <= {"acknowledged", "read"} and after.keys() == before.keys()
    with session_scope() as session:
        rows = session.exec(
            select(Delivery).where(Delivery.report_id == report_id, Delivery.version == 2)
        ).all()
        cda = blobs.get(session, find(session, report_id, 2).cda_sha256)
    assert {r.action for r in rows} == {"replace"}
    assert len(rows) == len({(r.channel, r.recipient) for r in rows})  # each recipient once
    parent = etree.fromstring(cda).xpath(
        "//h:relatedDocument[@typeCode='RPLC']/h:parentDocument/h:id/@root", namespaces=HL7
    )
    assert parent == [v1_id]
    (tmp_path / "v2.xml").write_bytes(cda)
    result = subprocess.run(
        [
            sys.executable,
            str(shared / "tools" / "cda_validate.py"),
            "-p",
            "all",
            "-q",
            str(tmp_path / "v2.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0 and ": 0 errors" in result.stdout, result.stdout + result.stderr


async def _with_settings(**hl7) -> None:
    await SiteSettingsBlock(settings=SiteSettings(hl7=Hl7Routing(**hl7))).asave(DEFAULT_NAME, overwrite=True)


async def test_a_deletion_goes_where_the_report_went_and_nowhere_else(pfi):
    await _with_settings(deletion_notice_mss=True)
    qualified, _ = _validated()
    unqualified, _ = _validated(qualified=False)  # DMP and patient mailbox blocked: PS only
    for report_id in (qualified, unqualified):
        await report_lifecycle(report_id, 1)
        await _settled(report_id)
        with session_scope() as session:
            reports.delete(session, report_id, "examen d'un autre patient", factories.RADIOLOGIST_RPPS)
        assert (await report_deletion(report_id, 1))["hl7"] == "acknowledged"
        await report_deletion(report_id, 1)  # once only

    filed = _filed(pfi)
    assert len(filed) == 4 and pfi.duplicates == 0
    deletions = [f for f, _ in filed if f.trigger == "T04"]  # the qualified report's, then the other's
    assert [f.flags["DESTDMP"] for f in deletions] == ["Y", "N"]
    assert [f.flags["DESTMSSANTEPAT"] for f in deletions] == ["Y", "N"]
    assert [f.flags["DESTMSSANTEPS"] for f in deletions] == ["Y", "Y"]  # the notice (site setting)
    with session_scope() as session:
        assert session.get(Report, qualified).status.value == "deleted"
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "report.delete")).all()
        assert {a.object_id for a in audit} == {qualified, unqualified}


async def test_a_deletion_sends_nothing_for_a_report_that_never_left(pfi):
    report_id, _ = _validated()
    pfi.fail_next("AR")
    assert (await report_lifecycle(report_id, 1))["hl7"] == "failed"
    with session_scope() as session:
        reports.delete(session, report_id, "doublon", factories.RADIOLOGIST_RPPS)
    outcome = await report_deletion(report_id, 1)
    assert outcome["published_version"] is None
    assert _filed(pfi) == []
    with session_scope() as session:
        assert session.exec(select(Delivery).where(Delivery.action == "delete")).all() == []


async def test_an_identity_downgraded_between_build_and_retry_lets_no_ins_leave(pfi):
    report_id, version = _validated()
    pfi.fail_next("AR")
    assert (await report_lifecycle(report_id, version))["hl7"] == "failed"
    with session_scope() as session:
        assert carries_ins(blobs.get(session, find(session, report_id, version).cda_sha256))
        patient = load_bundle(session, report_id).patient
        patient.status = IdentityStatus.VALI  # e.g. a doubt raised on the identity since the build
        session.add(patient)

    outcome = await retry_delivery(**factories.retry_request("10000000001", "test", report_id=report_id))
    assert set(outcome.values()) == {"acknowledged"}

    [(sent, raw)] = _filed(pfi)
    assert "ASIP-SANTE-INS" not in raw and "@patient.mssante.fr" not in raw
    carried = base64.b64decode(re.search(r"\^text\^XML\^Base64\^([^|\r]+)", raw).group(1))
    assert not carries_ins(carried)
    assert sent.flags["DESTDMP"] == "N" and sent.flags["DESTMSSANTEPAT"] == "N"
    with session_scope() as session:
        summary = report_summary(session, report_id)
        assert not carries_ins(blobs.get(session, find(session, report_id, version).cda_sha256))
        rebuilt = session.exec(select(AuditEntry).where(AuditEntry.action == "document.rebuild")).all()
    assert summary["channels"]["dmp"] == "blocked" and "at send time" in summary["reasons"]["dmp"]
    assert summary["channels"]["mss-patient"] == "blocked"
    assert [a.object_id for a in rebuilt] == [report_id]


async def test_a_pfi_not_idempotent_on_msh10_gets_one_attempt(pfi):
    await _with_settings(idempotent_on_control_id=False)
    report_id, version = _validated()
    pfi.fail_next("AE")
    assert (await report_lifecycle(report_id, version))["hl7"] == "failed"
    assert len(pfi.received) == 1
    with session_scope() as session:
        hl7 = session.exec(
            select(Delivery).where(Delivery.report_id == report_id, Delivery.channel == "hl7")
        ).one()
    assert hl7.attempts == 1 and "no ACK AA after 1 attempts" in hl7.reason


async def test_a_refusal_recorded_between_planning_and_retry_keeps_the_copy_home(pfi):
    report_id, version = _validated()
    pfi.fail_next("AR")
    assert (await report_lifecycle(report_id, version))["hl7"] == "failed"
    with session_scope() as session:
        patient = load_bundle(session, report_id).patient
        refusals.record(session, patient, "mss-patient", True, factories.RADIOLOGIST_RPPS, "au guichet")

    outcome = await retry_delivery(**factories.retry_request("10000000001", "test", report_id=report_id))
    assert set(outcome.values()) == {"acknowledged"}

    [(sent, _)] = _filed(pfi)
    assert sent.flags["DESTMSSANTEPAT"] == "N" and sent.flags["DESTDMP"] == "Y"
    with session_scope() as session:
        summary = report_summary(session, report_id)
    assert summary["channels"]["mss-patient"] == "blocked"
    assert summary["reasons"]["mss-patient"] == "at send time: patient refused sending to Mon espace santé"
