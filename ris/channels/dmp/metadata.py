"""The ebRIM of the three DMP transactions, built with lxml from the CDA header (dmp-xds.md §3-§4, §9).

- ITI-41 Provide and Register: SubmissionSet + DocumentEntry + HasMember (+ RPLC for a replacement).
- ITI-57 Update Document Set: a new version of the DocumentEntry (same logical id, `lid`) carrying the new
  confidentiality codes: the visibility / masking update after an announcement.
- ITI-62 Delete Document Set: the entry removed from the registry.

Every id of a submission derives from the delivery's idempotency key, so a retry carries the very same
SubmissionSet uniqueId and entryUUIDs (the registry recognises the replay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from ris.channels.dmp import codes
from ris.documents.xds_metadata import CdaHeader, Coded

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
SUBMISSION_SET_ID = "SubmissionSet01"


@dataclass(frozen=True)
class SubmissionIds:
    """The ids of one delivery's submission, all derived from its idempotency key (a UUID's hex)."""

    key: str

    @property
    def entry_uuid(self) -> str:
        return f"urn:uuid:{uuid.UUID(hex=self.key)}"

    @property
    def submission_uid(self) -> str:
        return f"2.25.{uuid.UUID(hex=self.key).int}"

    def association(self, kind: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.UUID(hex=self.key), kind)}"


@dataclass(frozen=True)
class Submission:
    """What a submission says beyond the CDA header."""

    ids: SubmissionIds
    visibility: tuple[str, ...]  # extra confidentiality codes (TRE_A07), in the order of codes.VISIBILITY
    source_id: str  # OID of the sending system
    submitted_at: str  # UTC YYYYMMDDHHMMSS
    replaces: str | None = None  # entryUUID of the replaced version (RPLC)
    update_of: str | None = None  # logical id of the entry whose new version this is (ITI-57)
    previous_version: int = 1


def _rim(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{RIM}}}{tag}", attrs)


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    value_list = _rim(_rim(parent, "Slot", name=name), "ValueList")
    for value in values:
        _rim(value_list, "Value").text = value


def _text(parent: etree._Element, tag: str, value: str) -> None:
    attrs = {"charset": "UTF8", "value": value, "{http://www.w3.org/XML/1998/namespace}lang": "FR"}
    etree.SubElement(_rim(parent, tag), f"{{{RIM}}}LocalizedString", attrs)


def _classification(parent: etree._Element, scheme: str, coded: Coded, ident: str) -> etree._Element:
    node = _rim(
        parent,
        "Classification",
        classificationScheme=scheme,
        classifiedObject=parent.get("id"),
        id=ident,
        nodeRepresentation=coded.code,
    )
    _slot(node, "codingScheme", [coded.system])
    _text(node, "Name", coded.label or coded.code)
    return node


def _external_id(parent: etree._Element, scheme: str, value: str, name: str, ident: str) -> None:
    node = _rim(
        parent,
        "ExternalIdentifier",
        id=ident,
        identificationScheme=scheme,
        registryObject=parent.get("id"),
        value=value,
    )
    _text(node, "Name", name)


def _author(parent: etree._Element, scheme: str, header: CdaHeader, ident: str, *, full: bool) -> None:
    node = _rim(
        parent,
        "Classification",
        classificationScheme=scheme,
        classifiedObject=parent.get("id"),
        id=ident,
        nodeRepresentation="",
    )
    _slot(node, "authorPerson", [header.author])
    _slot(node, "authorInstitution", [header.author_institution])
    if full:
        spec = header.author_specialty
        _slot(node, "authorSpecialty", [f"{spec.code}^{spec.label}^{spec.system}"])


def confidentiality(header: CdaHeader, visibility: tuple[str, ...]) -> list[Coded]:
    """The CDA's own code first, then the masking / visibility codes (TRANS mapping)."""
    first = Coded(
        header.confidentiality,
        codes.CONFIDENTIALITY_LABELS[header.confidentiality],
        codes.HL7_CONFIDENTIALITY,
    )
    return [first, *(Coded(c, codes.VISIBILITY_LABELS[c], codes.VISIBILITY_SYSTEM) for c in visibility)]


def document_entry(parent: etree._Element, header: CdaHeader, sub: Submission) -> etree._Element:
    entry_id = sub.ids.entry_uuid
    entry = _rim(parent, "ExtrinsicObject", id=entry_id, mimeType="text/xml", objectType=codes.DOCUMENT_ENTRY)
    if sub.update_of:
        entry.set("lid", sub.update_of)
    if header.patient_id is None:
        raise ValueError("CDA recordTarget: no INS, the DMP cannot be fed (INS rule 28)")
    _slot(entry, "creationTime", [header.creation_time])
    _slot(entry, "languageCode", [header.language])
    _slot(entry, "legalAuthenticator", [header.legal_authenticator])
    _slot(entry, "serviceStartTime", [header.service_start])
    _slot(entry, "serviceStopTime", [header.service_stop])
    _slot(entry, "sourcePatientId", [header.source_patient_id])
    _slot(entry, "sourcePatientInfo", header.source_patient_info)
    _slot(entry, "hash", [header.sha1])
    _slot(entry, "size", [str(header.size)])
    _text(entry, "Name", header.title)
    n = iter(range(1, 100))
    ident = lambda: f"{entry_id}-c{next(n)}"  # noqa: E731 - local id maker
    _author(entry, codes.DE_AUTHOR, header, ident(), full=True)
    _classification(entry, codes.DE_CLASS, Coded(*codes.CLASS_CODE), ident())
    _classification(entry, codes.DE_TYPE, header.type_code, ident())
    for coded in confidentiality(header, sub.visibility):
        _classification(entry, codes.DE_CONFIDENTIALITY, coded, ident())
    _classification(entry, codes.DE_FORMAT, Coded(*codes.FORMAT_CODE), ident())
    _classification(entry, codes.DE_FACILITY_TYPE, header.facility_type, ident())
    _classification(entry, codes.DE_PRACTICE_SETTING, header.practice_setting, ident())
    for event in header.events:
        _classification(entry, codes.DE_EVENT, event, ident())
    _slot(entry, "urn:ihe:iti:xds:2013:referenceIdList", header.reference_ids)
    _external_id(entry, codes.DE_PATIENT_ID, header.patient_id, "XDSDocumentEntry.patientId", ident())
    _external_id(entry, codes.DE_UNIQUE_ID, header.unique_id, "XDSDocumentEntry.uniqueId", ident())
    return entry


def submission_set(parent: etree._Element, header: CdaHeader, sub: Submission) -> etree._Element:
    package = _rim(parent, "RegistryPackage", id=SUBMISSION_SET_ID)
    _slot(package, "submissionTime", [sub.submitted_at])
    _text(package, "Name", header.title)
    _author(package, codes.SS_AUTHOR, header, "ss-author", full=False)
    content = codes.CONTENT_TYPES.get(header.encounter_code, codes.CONTENT_TYPE_DEFAULT)
    _classification(package, codes.SS_CONTENT_TYPE, Coded(*content, codes.CONTENT_TYPE_SYSTEM), "ss-content")
    _rim(
        package,
        "Classification",
        classificationNode=codes.SUBMISSION_SET,
        classifiedObject=SUBMISSION_SET_ID,
        id="ss-node",
    )
    _external_id(
        package, codes.SS_PATIENT_ID, header.patient_id or "", "XDSSubmissionSet.patientId", "ss-pid"
    )
    _external_id(package, codes.SS_SOURCE_ID, sub.source_id, "XDSSubmissionSet.sourceId", "ss-source")
    _external_id(package, codes.SS_UNIQUE_ID, sub.ids.submission_uid, "XDSSubmissionSet.uniqueId", "ss-uid")
    return package


def submit_objects(header: CdaHeader, sub: Submission) -> etree._Element:
    """lcm:SubmitObjectsRequest of an ITI-41 submission (or, with `update_of`, an ITI-57 update)."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = _rim(request, "RegistryObjectList")
    submission_set(objects, header, sub)
    document_entry(objects, header, sub)
    member = _rim(
        objects,
        "Association",
        associationType=codes.HAS_MEMBER,
        id=sub.ids.association("has-member"),
        sourceObject=SUBMISSION_SET_ID,
        targetObject=sub.ids.entry_uuid,
    )
    _slot(member, "SubmissionSetStatus", ["Original"])
    if sub.update_of:
        _slot(member, "PreviousVersion", [str(sub.previous_version)])
    if sub.replaces:
        _rim(
            objects,
            "Association",
            associationType=codes.RPLC,
            id=sub.ids.association("rplc"),
            sourceObject=sub.ids.entry_uuid,
            targetObject=sub.replaces,
        )
    return request


def provide_and_register(header: CdaHeader, sub: Submission, document_cid: str) -> etree._Element:
    """xdsb:ProvideAndRegisterDocumentSetRequest with the document as an xop:Include of `document_cid`."""
    request = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB})
    request.append(submit_objects(header, sub))
    document = etree.SubElement(request, f"{{{XDSB}}}Document", id=sub.ids.entry_uuid)
    include = etree.SubElement(
        document,
        "{http://www.w3.org/2004/08/xop/include}Include",
        nsmap={"xop": "http://www.w3.org/2004/08/xop/include"},
    )
    include.set("href", f"cid:{document_cid}")
    return request


def remove_objects(entry_uuids: Iterable[str]) -> etree._Element:
    """lcm:RemoveObjectsRequest of an ITI-62 deletion."""
    request = etree.Element(f"{{{LCM}}}RemoveObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    refs = _rim(request, "ObjectRefList")
    for entry in entry_uuids:
        _rim(refs, "ObjectRef", id=entry)
    return request
