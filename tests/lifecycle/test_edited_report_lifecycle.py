"""Issue 25, end to end over real sockets (Prefect server, sandbox PFI, our ZAM listener): a provisional
report whose text and distribution flags were amended before its validation goes out with the new text in
the PDF inside the CDA the PFI filed, with the new flags, and that CDA passes the ANS validator."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys

import pytest
from lxml import etree
from sqlmodel import select

from flows.report_lifecycle import report_lifecycle
from ris.lifecycle import reports
from ris.operations.demo import sample_worklist
from ris.operations.summary import report_summary
from ris.store.db import session_scope
from ris.store.models import Delivery, DeliveryStatus, Report
from ris.worklist import loader as worklist
from sandbox.pfi.checks import check

pytestmark = pytest.mark.slow

HL7 = {"h": "urn:hl7-org:v3"}
NEW_FINDINGS = "Relecture collégiale : hypersignal punctiforme frontal droit de 3 mm, sans effet de masse."
NEW_CONCLUSION = "Hypersignal frontal isolé de 3 mm : contrôle IRM à 6 mois."


async def _settled(report_id: str, timeout: float = 20) -> dict[str, str]:
    async with asyncio.timeout(timeout):
        while True:
            with session_scope() as session:
                rows = session.exec(select(Delivery).where(Delivery.report_id == report_id)).all()
                if rows and not any(r.status is DeliveryStatus.sent for r in rows):
                    return report_summary(session, report_id)["channels"]
            await asyncio.sleep(0.1)


def _pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode().split())  # the PDF wraps long lines


async def test_an_edited_provisional_report_validates_with_the_new_text_in_its_cda_and_pdf(
    pfi, shared, tmp_path
):
    data = sample_worklist(8)
    item = data["reports"][7]  # the sample's provisional report (qualified identity)
    report_id, author = item["id"], item["author_rpps"]
    with session_scope() as session:
        assert worklist.load(session, data).ok
    with session_scope() as session:
        old_text = session.get(Report, report_id).body
        reports.edit(
            session, report_id, f"Indication : bilan.\nRésultats : {NEW_FINDINGS}", NEW_CONCLUSION, author
        )
        reports.set_flags(session, report_id, {"dmp_blocked": True}, author)
    with session_scope() as session:
        version = reports.validate(session, report_id, author)
    assert version.version == 1 and NEW_FINDINGS in version.body

    await report_lifecycle(report_id, 1)
    channels = await _settled(report_id)
    assert channels["dmp"] == "blocked" and channels["mss-ps"] in ("acknowledged", "read")

    [filed] = [e for e in pfi.received if e.answer == "AA" and not e.duplicate]
    facts, problem = check(filed.raw, matrix_check=False)
    assert problem is None, problem
    assert facts.flags["DESTDMP"] == "N" and facts.flags["DESTMSSANTEPS"] == "Y"  # the flag amended
    cda = etree.fromstring(facts.cda)
    [pdf64] = cda.xpath("//h:nonXMLBody/h:text/text()", namespaces=HL7)
    text = _pdf_text(base64.b64decode(pdf64), tmp_path)
    assert NEW_FINDINGS in text and NEW_CONCLUSION in text
    assert " ".join(old_text.split()).split("Résultats : ")[1][:40] not in text

    (tmp_path / "cda.xml").write_bytes(facts.cda)
    validated = subprocess.run(
        [
            sys.executable,
            str(shared / "tools" / "cda_validate.py"),
            "-p",
            "all",
            "-q",
            str(tmp_path / "cda.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert validated.returncode == 0 and ": 0 errors" in validated.stdout, validated.stdout + validated.stderr
