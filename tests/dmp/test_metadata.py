"""The XDS metadata, the VIHF and the MTOM body, without a network: built from the CDA header, equal to
it, signed as transmitted, and shaped like the DRIMbox reference submission (shared/reference/xds)."""

from __future__ import annotations

import datetime as dt
import re
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidSignature

from ris.channels.dmp import codes, mtom, soap, transactions
from ris.channels.dmp.metadata import Submission, SubmissionIds
from ris.channels.dmp.vihf import Software
from ris.documents.xds_metadata import read
from tests import factories
from tests.dmp.conftest import NOW, config_for, direct_settings, signing_for, with_documents

NS = {
    "s": soap.SOAP,
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "xdsb": "urn:ihe:iti:xds-b:2007",
    "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
    "h": "urn:hl7-org:v3",
    "wsse": soap.WSSE,
}
KEY = "0123456789abcdef0123456789abcdef"
# Where this submission differs from the DRIMbox one, on purpose (docs/dmp.md, "Compared with the DRIMbox
# reference"): a CR has no DSG signature document; submissionTime is a SubmissionSet slot (ITI TF-3), not
# a DocumentEntry one; Description (comments) is optional and not sent.
NOT_SENT = {"slot:submissionTime", "Description"}
ADDED = {"classification:authorSpecialty"}


@pytest.fixture
def request_parts(session, dmp):
    """The CDA and the MTOM request of a masked report with an announcement pending."""
    settings = direct_settings()
    bundle = factories.validated_report(session, copies=0, announcement_required=True, mask_ps=True)
    cda = with_documents(session, bundle, settings)
    header = read(cda)
    sub = Submission(
        SubmissionIds(KEY), ("MASQUE_PS", "INVISIBLE_PATIENT"), settings.facility.oid, "20261128100000"
    )
    ctx = transactions.Context(config_for(dmp), signing_for(dmp), Software("ID", "ris", "1", "H"), "SA08")
    request = transactions.provide(cda, header, sub, ctx, NOW)
    return cda, request, dmp


def parts(content_type: str, body: bytes) -> tuple[etree._Element, dict[str, bytes], object]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    by_cid = {p["Content-ID"].strip("<>"): p.get_payload(decode=True) for p in message.iter_parts()}
    root = by_cid[message.get_param("start").strip("<>")]
    return etree.fromstring(root), by_cid, message


def cda_value(cda: etree._Element, path: str) -> str:
    return str(cda.xpath(f"string({path})", namespaces=NS))


def test_mtom_body_carries_the_cda_intact_with_a_soap12_root(request_parts):
    cda, request, _ = request_parts
    envelope, by_cid, message = parts(request.content_type, request.body)
    assert message.get_param("type") == "application/xop+xml"
    assert message.get_param("start-info") == "application/soap+xml"
    assert message.get_param("action") == soap.ITI41
    assert not request.body.split(b"\r\n\r\n", 1)[1].startswith(b"<?xml")  # no declaration in the root part
    href = envelope.xpath("string(//xdsb:Document/*/@href)", namespaces=NS)
    assert by_cid[href.removeprefix("cid:")] == cda
    assert (
        envelope.findtext("s:Header/{http://www.w3.org/2005/08/addressing}Action", namespaces=NS)
        == soap.ITI41
    )


def test_multipart_builder_refuses_a_declaration_and_avoids_boundaries_in_parts():
    with pytest.raises(ValueError, match="XML declaration"):
        mtom.multipart(b'<?xml version="1.0"?><a/>', [], soap.ITI41)
    content_type, body = mtom.multipart(b"<a/>", [mtom.Part("x@y", b"--MIMEBoundary_ inside")], soap.ITI41)
    boundary = re.search(r'boundary="([^"]+)"', content_type).group(1)
    assert body.count(boundary.encode()) == 3


def test_metadata_equal_the_cda_header(request_parts):
    cda_bytes, request, _ = request_parts
    envelope, _, _ = parts(request.content_type, request.body)
    cda = etree.fromstring(cda_bytes)
    [entry] = envelope.xpath("//rim:ExtrinsicObject", namespaces=NS)
    slots = {
        s.get("name"): [v.text for v in s.iterfind(".//rim:Value", NS)]
        for s in entry.iterfind("rim:Slot", NS)
    }
    ids = {
        e.get("identificationScheme"): e.get("value") for e in entry.iterfind("rim:ExternalIdentifier", NS)
    }
    ins = cda.xpath("h:recordTarget/h:patientRole/h:id[@root='1.2.250.1.213.1.4.10']", namespaces=NS)[0]
    assert ids[codes.DE_PATIENT_ID] == f"{ins.get('extension')}^^^&{ins.get('root')}&ISO^NH"
    assert ids[codes.DE_UNIQUE_ID] == cda_value(cda, "h:id/@root")

    def utc(path: str) -> str:
        value = dt.datetime.strptime(cda_value(cda, path), "%Y%m%d%H%M%S%z")
        return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")

    assert slots["creationTime"] == [utc("h:effectiveTime/@value")]
    assert slots["serviceStartTime"] == [utc("h:documentationOf/h:serviceEvent/h:effectiveTime/h:low/@value")]
    assert slots["serviceStopTime"] == [utc("h:documentationOf/h:serviceEvent/h:effectiveTime/h:high/@value")]
    rpps = cda_value(cda, "h:author/h:assignedAuthor/h:id/@extension")
    family = cda_value(cda, "h:author/h:assignedAuthor/h:assignedPerson/h:name/h:family")
    author = entry.xpath(f"rim:Classification[@classificationScheme='{codes.DE_AUTHOR}']", namespaces=NS)[0]
    assert author.xpath("string(rim:Slot[@name='authorPerson']//rim:Value)", namespaces=NS).startswith(
        f"{rpps}^{family}^"
    )
    legal = cda_value(cda, "h:legalAuthenticator/h:assignedEntity/h:id/@extension")
    assert slots["legalAuthenticator"][0].startswith(f"{legal}^")
    conf = entry.xpath(
        f"rim:Classification[@classificationScheme='{codes.DE_CONFIDENTIALITY}']/@nodeRepresentation",
        namespaces=NS,
    )
    assert conf == [cda_value(cda, "h:confidentialityCode/@code"), "MASQUE_PS", "INVISIBLE_PATIENT"]
    assert entry.xpath(
        f"string(rim:Classification[@classificationScheme='{codes.DE_TYPE}']/@nodeRepresentation)",
        namespaces=NS,
    ) == cda_value(cda, "h:code/@code")
    assert entry.xpath("string(rim:Name/rim:LocalizedString/@value)", namespaces=NS) == cda_value(
        cda, "h:title"
    )
    assert slots["size"] == [str(len(cda_bytes))]
    accession = cda_value(cda, "h:inFulfillmentOf/h:order/*[local-name()='accessionNumber']/@extension")
    assert any(v.startswith(f"{accession}^^^&") for v in slots["urn:ihe:iti:xds:2013:referenceIdList"])


def shape(obj: etree._Element) -> set[str]:
    """Names of an ebRIM object's slots, classifications (by scheme, authors by their slots) and ids."""
    names = {f"slot:{s.get('name')}" for s in obj.iterfind("rim:Slot", NS)}
    for c in obj.iterfind("rim:Classification", NS):
        scheme = c.get("classificationScheme") or c.get("classificationNode")
        names.add(f"classification:{scheme}")
        if scheme in (codes.DE_AUTHOR, codes.SS_AUTHOR):
            names |= {f"classification:{s.get('name')}" for s in c.iterfind("rim:Slot", NS)}
    names |= {f"id:{e.get('identificationScheme')}" for e in obj.iterfind("rim:ExternalIdentifier", NS)}
    names |= {
        t.split("}")[1]
        for t in ("{x}Name", "{x}Description")
        if obj.find(f"rim:{t.split('}')[1]}", NS) is not None
    }
    return names


def reference_envelope(shared: Path, name: str) -> etree._Element:
    text = (shared / "reference" / "xds" / name).read_text(encoding="utf-8")
    start, end = text.index("<soap:Envelope"), text.index("</soap:Envelope>") + len("</soap:Envelope>")
    return etree.fromstring(text[start:end].encode())


def test_same_slots_and_classifications_as_the_drimbox_submission(request_parts, shared: Path):
    _, request, _ = request_parts
    ours, _, _ = parts(request.content_type, request.body)
    theirs = reference_envelope(shared, "publication.xml")
    for tag, pick in (("RegistryPackage", 0), ("ExtrinsicObject", 0)):
        mine = shape(ours.xpath(f"//rim:{tag}", namespaces=NS)[0])
        reference = shape(theirs.xpath(f"//rim:{tag}", namespaces=NS)[pick])
        assert reference - mine <= NOT_SENT, (tag, reference - mine)
        assert mine - reference <= ADDED, (tag, mine - reference)
    assert {a.get("associationType") for a in ours.xpath("//rim:Association", namespaces=NS)} == {
        codes.HAS_MEMBER
    }


def test_vihf_verifies_exactly_as_transmitted_and_not_once_altered(request_parts):
    _, request, dmp = request_parts
    envelope, _, _ = parts(request.content_type, request.body)
    assertion = envelope.find("s:Header/wsse:Security/saml2:Assertion", NS)
    cert = dmp.pki.client_cert.read_text()
    verified = XMLVerifier().verify(etree.tostring(assertion), x509_cert=cert, id_attribute="ID")
    attributes = {a.get("Name") for a in verified.signed_xml.iterfind(".//saml2:Attribute", NS)}
    assert {
        "VIHF_Version",
        "Ressource_URN",
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    } <= attributes
    assert "exc-c14n" in etree.tostring(assertion).decode()
    tampered = etree.tostring(assertion).replace(b"279035121518989", b"180036912345678")
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(tampered, x509_cert=cert, id_attribute="ID")


def test_registry_answers_read_as_outcomes(shared: Path):
    success = etree.tostring(reference_envelope(shared, "response.xml"))
    assert soap.read_answer("application/soap+xml", success).success
    failure = success.replace(
        b'ResponseStatusType:Success"/>',
        b'ResponseStatusType:Failure"><ns2:RegistryErrorList>'
        b'<ns2:RegistryError errorCode="XDSRegistryBusy" codeContext="busy" '
        b'severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>'
        b"</ns2:RegistryErrorList></ns2:RegistryResponse>",
    )
    answer = soap.read_answer("application/soap+xml", failure)
    assert (
        not answer.success
        and answer.transient
        and answer.reason == "DMP XDSRegistryBusy: the DMP refused the submission (busy)"
    )


def test_identifiers_echoed_by_the_registry_never_reach_the_reason():
    error = soap.RegistryError(
        "XDSRegistryMetadataError", "patientId 279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    )
    assert "279035121518989" not in error.explained and "1.2.250.1.213.1.4.10" not in error.explained
