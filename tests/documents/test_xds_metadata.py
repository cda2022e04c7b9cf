"""The one reader of a CDA's XDS metadata (ris.documents.xds_metadata): what it reads from the header the
builder writes, how it refuses a header that lacks a required element, and the DMP's ITI-41 and the XDM's
METADATA.XML carrying the very values it read."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from sqlmodel import Session

from ris import documents
from ris.channels.dmp.metadata import Submission, SubmissionIds, submit_objects
from ris.channels.mssante import xdm
from ris.documents.xds_metadata import CdaHeaderError, read, utc
from ris.site.settings import SiteSettings
from tests import factories

RIM = {"rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"}
COMMON_SLOTS = (
    "creationTime",
    "hash",
    "languageCode",
    "legalAuthenticator",
    "serviceStartTime",
    "serviceStopTime",
    "size",
    "sourcePatientId",
    "sourcePatientInfo",
)


def cda_of(session: Session, settings: SiteSettings, **report) -> bytes:
    return documents.build(factories.validated_report(session, copies=0, **report), settings).cda


def test_a_qualified_report_reads_as_the_dmp_mapping_says(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session, copies=0)
    cda = documents.build(bundle, settings).cda
    header = read(cda)
    assert header.unique_id == bundle.version.document_id
    assert header.patient_id == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert header.source_patient_id == f"{bundle.patient.ipp}^^^&{settings.facility.oid}&ISO^PI"
    assert header.source_patient_info == ("PID-5|PAT-TROIS^DOMINIQUE^^^^^L", "PID-7|19790328", "PID-8|F")
    assert header.author == header.legal_authenticator
    assert header.author == "810001234567^LEFÈVRE^Émile^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    assert header.legal_authenticator_id == "810001234567"
    assert header.legal_authenticator_name == "Émile LEFÈVRE"
    assert header.structure_id == "1750000001"
    assert header.author_institution.endswith("^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750000001")
    assert (header.confidentiality, header.confidentiality_label) == ("N", "Normal")
    assert header.service_start == "20261120093000" and header.service_stop == "20261120095000"
    assert len(header.creation_time) == 14 and header.creation_time.isdigit()
    assert [e.code for e in header.events] == ["CT"]
    assert header.sha1 == hashlib.sha1(cda).hexdigest() and header.size == len(cda)


def test_without_a_qualified_identity_there_is_no_patient_id_and_the_ipp_stays(
    session: Session, settings: SiteSettings
) -> None:
    header = read(cda_of(session, settings, qualified=False))
    assert header.patient_id is None
    assert header.source_patient_id.endswith(f"^^^&{settings.facility.oid}&ISO^PI")


def test_an_unknown_sex_gives_no_pid_8(session: Session, settings: SiteSettings) -> None:
    patient = factories.patient(session, qualified=False, sex="U")
    cda = documents.build(factories.validated_report(session, patient_row=patient, copies=0), settings).cda
    assert [i.split("|")[0] for i in read(cda).source_patient_info] == ["PID-5", "PID-7"]


@pytest.mark.parametrize(
    ("xpath", "named"),
    [("h:title", "CDA title/text(): missing"), ("h:languageCode", "CDA languageCode/@code: missing")],
)
def test_a_header_without_a_required_element_is_refused_naming_it(
    session: Session, settings: SiteSettings, xpath: str, named: str
) -> None:
    root = etree.fromstring(cda_of(session, settings))
    (element,) = root.xpath(xpath, namespaces={"h": "urn:hl7-org:v3"})
    root.remove(element)
    with pytest.raises(CdaHeaderError, match=f"^{re.escape(named)}, required by the XDS metadata$"):
        read(etree.tostring(root))


@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9998, 12, 30)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_a_time_with_its_offset_is_the_same_instant_in_utc(moment: dt.datetime, minutes: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))
    assert utc(aware.strftime("%Y%m%d%H%M%S%z")) == aware.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def _slots(request: etree._Element) -> dict[str, list[str]]:
    (entry,) = request.xpath("//rim:ExtrinsicObject", namespaces=RIM)
    return {
        name: entry.xpath(f"rim:Slot[@name='{name}']/rim:ValueList/rim:Value/text()", namespaces=RIM)
        for name in COMMON_SLOTS
    }


def _authors(request: etree._Element) -> list[list[str]]:
    return [
        node.xpath("rim:Slot[@name!='authorSpecialty']/rim:ValueList/rim:Value/text()", namespaces=RIM)
        for node in request.xpath("//rim:Classification[rim:Slot/@name='authorPerson']", namespaces=RIM)
    ]


def test_the_dmp_and_the_xdm_carry_the_values_read_once(session: Session, settings: SiteSettings) -> None:
    cda = cda_of(session, settings)
    header = read(cda)
    sub = Submission(SubmissionIds("0123456789abcdef0123456789abcdef"), (), "1.2.3", "20261128100000")
    dmp = submit_objects(header, sub)
    mail = etree.fromstring(
        xdm.metadata(cda, action="initial", submitted_at=dt.datetime.now(dt.UTC), source_oid="1.2.3")
    )
    assert _slots(mail) == _slots(dmp)
    assert _slots(dmp)["sourcePatientInfo"] == list(header.source_patient_info)
    assert _authors(mail) == _authors(dmp) == [[header.author, header.author_institution]] * 2
    external = "//rim:ExternalIdentifier[rim:Name/rim:LocalizedString/@value='{}']/@value"
    for name, value in (
        ("XDSDocumentEntry.patientId", header.patient_id),
        ("XDSDocumentEntry.uniqueId", header.unique_id),
        ("XDSSubmissionSet.patientId", header.patient_id),
    ):
        assert mail.xpath(external.format(name), namespaces=RIM) == [value]
        assert dmp.xpath(external.format(name), namespaces=RIM) == [value]
