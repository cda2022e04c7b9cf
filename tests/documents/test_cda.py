"""The CDA R2 N1 header (cda-cr-ima.md §3) and, in the slow test, the official ANS validator."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import Session

from ris import documents
from ris.site.settings import SiteSettings
from tests import factories
from tests.documents.conftest import preflight_command, replace, variants

NS = {"h": "urn:hl7-org:v3", "ps3-20": "urn:dicom-org:ps3-20"}


def parse(built: documents.BuiltDocuments) -> etree._Element:
    return etree.fromstring(built.cda)


def values(doc: etree._Element, xpath: str) -> list[str]:
    return [str(v) for v in doc.xpath(xpath, namespaces=NS)]


def test_header_of_a_qualified_report(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session, copies=2)
    built = documents.build(bundle, settings)
    doc = parse(built)
    assert values(doc, "h:templateId/@root") == [
        "2.16.840.1.113883.2.8.2.1",
        "1.2.250.1.213.1.1.1.1",
        "1.3.6.1.4.1.19376.1.2.20",
    ]
    assert values(doc, "h:id/@root") == [bundle.version.document_id] == [built.document_id]
    assert not doc.xpath("h:id/@extension", namespaces=NS)  # root-only
    assert values(doc, "h:code/@code") == ["18748-4"]
    assert values(doc, "h:setId/@root") == [bundle.report.set_id]
    assert values(doc, "h:versionNumber/@value") == ["1"]
    assert not doc.xpath("h:relatedDocument", namespaces=NS)
    role = "h:recordTarget/h:patientRole"
    assert values(doc, f"{role}/h:id/@root") == ["1.2.250.1.213.1.4.10", settings.facility.oid]
    assert values(doc, f"{role}/h:id/@extension") == ["279035121518989", bundle.patient.ipp]
    assert values(doc, f"{role}/h:telecom/@value") == ["mailto:279035121518989@patient.mssante.fr"]
    name = f"{role}/h:patient/h:name"
    assert values(doc, f"{name}/h:family[@qualifier='BR']/text()") == ["PAT-TROIS"]
    assert values(doc, f"{name}/h:given[not(@qualifier)]/text()") == ["DOMINIQUE MARIE-LOUISE"]
    assert values(doc, f"{name}/h:given[@qualifier='BR']/text()") == ["DOMINIQUE"]
    assert values(doc, f"{role}/h:patient/h:birthplace/h:place/h:addr/h:county/text()") == ["63220"]
    legal = "h:legalAuthenticator"
    assert values(doc, f"{legal}/h:signatureCode/@code") == ["S"]
    assert values(doc, f"{legal}/h:assignedEntity/h:id/@extension") == ["810001234567"]
    assert values(doc, f"{legal}/h:assignedEntity/h:id/@root") == ["1.2.250.1.71.4.2.1"]
    assert values(doc, f"{legal}/h:time/@value") == values(doc, "h:author/h:time/@value")
    assert values(doc, "h:custodian//h:representedCustodianOrganization/h:id/@extension") == ["1750000001"]
    requester = bundle.requester
    assert values(doc, "h:participant[@typeCode='REF']/h:associatedEntity/h:telecom/@value") == [
        f"mailto:{requester.mss_address}"
    ]
    order = "h:inFulfillmentOf/h:order"
    assert values(doc, f"{order}/h:id/@extension") == [bundle.exam.order_id]
    assert values(doc, f"{order}/ps3-20:accessionNumber/@extension") == [bundle.exam.accession_number]
    event = "h:documentationOf/h:serviceEvent"
    assert values(doc, f"{event}/h:id/@root") == [bundle.exam.study_instance_uid]
    assert values(doc, f"{event}/h:code/@code") == ["24727-0"]
    assert values(doc, f"{event}/h:code/h:translation/@code") == ["CT"]
    assert len(doc.xpath(f"{event}/h:performer", namespaces=NS)) == 1
    facility = "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility"
    assert values(doc, f"{facility}/h:code/@code") == ["SA08"]
    assert values(doc, f"{facility}/h:code/@codeSystem") == ["1.2.250.1.71.4.2.4"]
    (text,) = doc.xpath("h:component/h:nonXMLBody/h:text", namespaces=NS)
    assert text.get("mediaType") == "application/pdf" and text.get("representation") == "B64"
    assert base64.b64decode(text.text) == built.pdf


def test_unqualified_identity_has_ipp_and_traits_only(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session, qualified=False)
    doc = parse(documents.build(bundle, settings))
    assert values(doc, "h:recordTarget/h:patientRole/h:id/@root") == [settings.facility.oid]
    assert not doc.xpath("h:recordTarget/h:patientRole/h:telecom", namespaces=NS)
    assert values(doc, "h:recordTarget//h:family[@qualifier='BR']/text()") == ["PAT-TROIS"]


def test_replacement_keeps_the_set_and_points_to_the_replaced_version(
    session: Session, settings: SiteSettings
) -> None:
    first = factories.validated_report(session)
    v1 = parse(documents.build(first, settings))
    second = replace(session, first)
    v2 = parse(documents.build(second, settings))
    assert values(v2, "h:setId/@root") == values(v1, "h:setId/@root")
    assert values(v2, "h:versionNumber/@value") == ["2"]
    assert values(v2, "h:id/@root") != values(v1, "h:id/@root")
    assert values(v2, "h:relatedDocument[@typeCode='RPLC']/h:parentDocument/h:id/@root") == values(
        v1, "h:id/@root"
    )


def test_confidentiality_and_encounter_follow_the_report(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session, confidentiality="R")
    bundle.exam.encounter_class = "I"
    doc = parse(documents.build(bundle, settings))
    assert values(doc, "h:confidentialityCode/@code") == ["R"]
    assert values(doc, "h:componentOf/h:encompassingEncounter/h:code/@code") == ["IMP"]


@pytest.mark.slow
def test_every_variant_passes_the_ans_rules_and_pdfa_validators(
    session: Session, settings: SiteSettings, shared: Path, tmp_path: Path
) -> None:
    built = {name: documents.build(bundle, settings) for name, bundle in variants(session).items()}
    cdas = []
    for name, docs in built.items():
        (tmp_path / f"{name}.xml").write_bytes(docs.cda)
        (tmp_path / f"{name}.pdf").write_bytes(docs.pdf)
        cdas.append(str(tmp_path / f"{name}.xml"))
    result = subprocess.run(
        [sys.executable, str(shared / "tools" / "cda_validate.py"), "-p", "all", "-q", *cdas],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": 0 errors") == len(cdas), result.stdout

    commands = [preflight_command(tmp_path / f"{name}.pdf") for name in built]
    if commands[0] is None:
        pytest.skip("java or the PDFBox Preflight jars are absent (Debian libpdfbox2-java)")
    running = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in commands
    ]
    for name, proc in zip(built, running, strict=True):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {out}"
        assert "is a valid PDF/A-1b file" in out


def test_the_radiologists_specialty_is_the_author_code(session):
    """JDV_J01: the specialty recorded for the radiologist; the default when none was recorded."""
    bundle = factories.validated_report(session)
    built = documents.build(bundle, SiteSettings())
    root = etree.fromstring(built.cda)
    codes = root.xpath("//h:author/h:assignedAuthor/h:code/@code", namespaces=NS)
    assert codes == ["G15_10/SM74"]
    bundle.validator.specialty_code = None
    bundle.author.specialty_code = None
    root = etree.fromstring(documents.build(bundle, SiteSettings()).cda)
    assert root.xpath("//h:legalAuthenticator//h:code/@code", namespaces=NS) == ["G15_10/SM44"]
    bundle.validator.specialty_code = "G15_10/SM01"
    with pytest.raises(
        documents.DocumentError, match=r"validator\.specialty_code: G15_10/SM01 is not an imaging"
    ):
        documents.build(bundle, SiteSettings())
