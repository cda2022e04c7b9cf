"""The IHE_XDM.zip of an MSSanté mail (mssante.md §6): README.TXT, INDEX.HTM and one subset holding
METADATA.XML (a bare ebRIM 3.0 `lcm:SubmitObjectsRequest`) and the CDA, byte for byte.

The metadata is read back from the CDA itself, so the two can never disagree, by the reader the DMP uses
(`ris.documents.xds_metadata`): the values are the DMP mapping's (dmp-xds.md §3-4). A replacement or a
deletion carries the extra-metadata slot `action` (C / D; the slot's name is an open point of the CI-SIS,
mssante.md §6).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from dataclasses import dataclass
from html import escape

from lxml import etree

from ris.documents import xds_metadata

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"

SUBSET = "IHE_XDM/SUBSET01"
CDA_NAME = "DOC0001.XML"
ACTION_SLOT = "urn:ris-engine:xdm:action"  # ours until the CI-SIS names the slot (mssante.md §6)
ACTIONS = {"initial": None, "release": None, "replace": "C", "delete": "D"}

STABLE_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
CLASSIFICATION_NODE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ClassificationNode"
DE = {
    "author": "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d",
    "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "healthcareFacilityTypeCode": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practiceSettingCode": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    "patientId": "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "uniqueId": "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
}
SS = {
    "author": "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d",
    "contentTypeCode": "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500",
    "patientId": "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
    "sourceId": "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832",
    "uniqueId": "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
}
# JDV_J59 contentTypeCode from the CDA encounter (dmp-xds.md §4: I→03, O→07, R→19, E→07).
CONTENT_TYPE = {"IMP": "03", "SEANCE": "19"}


@dataclass(frozen=True)
class Sender:
    """Who sends the archive, for README.TXT and INDEX.HTM."""

    organisation: str
    identifier: str  # FINESS
    address: str
    phone: str
    mailbox: str
    application: str = "RIS report lifecycle engine"
    version: str = "1.0"
    vendor: str = "RIS engine"


class _Builder:
    def __init__(self) -> None:
        self.request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
        self.objects = etree.SubElement(self.request, f"{{{RIM}}}RegistryObjectList")

    @staticmethod
    def el(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{RIM}}}{tag}", {k: v for k, v in attrs.items() if v is not None})

    def slot(self, parent: etree._Element, name: str, *values: str) -> None:
        slot = self.el(parent, "Slot", name=name)
        values_el = self.el(slot, "ValueList")
        for value in values:
            self.el(values_el, "Value").text = value

    def localized(self, parent: etree._Element, tag: str, text: str) -> None:
        self.el(
            self.el(parent, tag),
            "LocalizedString",
            value=text,
            charset="UTF-8",
            **{"{http://www.w3.org/XML/1998/namespace}lang": "fr-FR"},
        )

    def _classification(self, parent: etree._Element, scheme: str, node_id: str, code: str) -> etree._Element:
        return self.el(
            parent,
            "Classification",
            id=node_id,
            classificationScheme=scheme,
            classifiedObject=parent.get("id"),
            nodeRepresentation=code,
            objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification",
        )

    def classification(
        self, parent: etree._Element, scheme: str, code: str, system: str, name: str, *, index: int = 0
    ) -> None:
        node = self._classification(parent, scheme, f"{parent.get('id')}-c{len(parent)}-{index}", code)
        self.slot(node, "codingScheme", system)
        self.localized(node, "Name", name)

    def author(self, parent: etree._Element, scheme: str, person: str, institution: str) -> None:
        node = self._classification(parent, scheme, f"{parent.get('id')}-author", "")
        if person:
            self.slot(node, "authorPerson", person)
        self.slot(node, "authorInstitution", institution)

    def identifier(self, parent: etree._Element, scheme: str, value: str, name: str) -> None:
        node = self.el(
            parent,
            "ExternalIdentifier",
            id=f"{parent.get('id')}-{name}",
            identificationScheme=scheme,
            registryObject=parent.get("id"),
            value=value,
            objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier",
        )
        self.localized(node, "Name", name)


def metadata(cda: bytes, *, action: str, submitted_at: dt.datetime, source_oid: str) -> bytes:
    """METADATA.XML describing `cda` (stored as DOC0001.XML beside it)."""
    header = xds_metadata.read(cda)
    # Without a qualified INS the patientId is the IPP under the facility OID (open point, mssante.md §6).
    patient_id = header.patient_id or header.source_patient_id
    b = _Builder()
    entry_id, set_id = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    entry = b.el(b.objects, "ExtrinsicObject", id=entry_id, mimeType="text/xml", objectType=STABLE_ENTRY)
    for name, value in (
        ("creationTime", header.creation_time),
        ("hash", header.sha1),
        ("languageCode", header.language),
        ("legalAuthenticator", header.legal_authenticator),
        ("serviceStartTime", header.service_start),
        ("serviceStopTime", header.service_stop),
        ("size", str(header.size)),
        ("sourcePatientId", header.source_patient_id),
        ("URI", CDA_NAME),
    ):
        b.slot(entry, name, value)
    b.slot(entry, "sourcePatientInfo", *header.source_patient_info)
    if ACTIONS.get(action):
        b.slot(entry, ACTION_SLOT, ACTIONS[action])
    b.localized(entry, "Name", header.title)
    b.author(entry, DE["author"], header.author, header.author_institution)
    b.classification(entry, DE["classCode"], "31", "1.2.250.1.213.1.1.4.1", "Imagerie médicale")
    b.classification(
        entry,
        DE["confidentialityCode"],
        header.confidentiality,
        "2.16.840.1.113883.5.25",
        header.confidentiality_label or "Normal",
    )
    b.classification(
        entry,
        DE["formatCode"],
        "urn:ihe:iti:xds-sd:pdf:2008",
        "1.3.6.1.4.1.19376.1.2.3",
        "Document à corps non structuré en Pdf/A-1",
    )
    for scheme, coded in (
        (DE["healthcareFacilityTypeCode"], header.facility_type),
        (DE["practiceSettingCode"], header.practice_setting),
        (DE["typeCode"], header.type_code),
    ):
        b.classification(entry, scheme, coded.code, coded.system, coded.label)
    b.identifier(entry, DE["patientId"], patient_id, "XDSDocumentEntry.patientId")
    b.identifier(entry, DE["uniqueId"], header.unique_id, "XDSDocumentEntry.uniqueId")

    package = b.el(b.objects, "RegistryPackage", id=set_id)
    b.slot(package, "submissionTime", submitted_at.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S"))
    b.author(package, SS["author"], header.author, header.author_institution)
    content_type = CONTENT_TYPE.get(header.encounter_code, "07")
    b.classification(package, SS["contentTypeCode"], content_type, "1.2.250.1.213.2.2", "Consultation")
    b.identifier(package, SS["patientId"], patient_id, "XDSSubmissionSet.patientId")
    b.identifier(package, SS["sourceId"], source_oid, "XDSSubmissionSet.sourceId")
    b.identifier(package, SS["uniqueId"], f"2.25.{uuid.uuid4().int}", "XDSSubmissionSet.uniqueId")
    b.el(
        b.objects,
        "Classification",
        id=f"{set_id}-node",
        classifiedObject=set_id,
        classificationNode=SUBMISSION_SET_NODE,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification",
    )
    association = b.el(
        b.objects,
        "Association",
        id=f"urn:uuid:{uuid.uuid4()}",
        associationType=HAS_MEMBER,
        sourceObject=set_id,
        targetObject=entry_id,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association",
    )
    b.slot(association, "SubmissionSetStatus", "Original")
    return etree.tostring(b.request, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _readme(sender: Sender) -> str:
    return "\r\n".join(
        [
            "IHE XDM - Echange de documents de sante",
            "",
            f"Emetteur : {sender.organisation} (FINESS {sender.identifier})",
            f"Adresse : {sender.address}",
            f"Telephone : {sender.phone}",
            f"Messagerie : {sender.mailbox}",
            f"Application : {sender.application} {sender.version} ({sender.vendor})",
            "",
            "Instructions : ouvrir INDEX.HTM ; le document est au format CDA R2",
            "(IHE_XDM/SUBSET01/DOC0001.XML), decrit par IHE_XDM/SUBSET01/METADATA.XML.",
            "",
            "Arborescence :",
            "README.TXT",
            "INDEX.HTM",
            "IHE_XDM/",
            "  SUBSET01/",
            "    METADATA.XML",
            f"    {CDA_NAME}",
            "",
        ]
    )


def _index(sender: Sender) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="fr"><head><meta charset="UTF-8"/>'
        "<title>IHE XDM</title></head><body>"
        f"<p>Émetteur : {escape(sender.organisation)} — {escape(sender.mailbox)}</p>"
        '<ul><li><a href="README.TXT">README.TXT</a></li>'
        f'<li><a href="{SUBSET}/{CDA_NAME}">Compte rendu d\'imagerie médicale (CDA)</a></li>'
        f'<li><a href="{SUBSET}/METADATA.XML">Métadonnées</a></li></ul>'
        "</body></html>\n"
    )


def package(cda: bytes, sender: Sender, *, action: str, submitted_at: dt.datetime, source_oid: str) -> bytes:
    """The IHE_XDM.zip bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.TXT", _readme(sender).encode("utf-8"))
        archive.writestr("INDEX.HTM", _index(sender).encode("utf-8"))
        archive.writestr(
            f"{SUBSET}/METADATA.XML",
            metadata(cda, action=action, submitted_at=submitted_at, source_oid=source_oid),
        )
        archive.writestr(f"{SUBSET}/{CDA_NAME}", cda)
    return buffer.getvalue()
