"""What the sandbox DMP checks in a submission, written from dmp-xds.md §3-§5 and §7 (never from the
engine's code): required slots, classifications and identifiers, their code systems, the INS, and the
VIHF attributes. Each finding is a (registry error code, what is wrong) pair."""

from __future__ import annotations

import re

from lxml import etree

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS = {"rim": RIM, "saml2": SAML}
METADATA_ERROR = "XDSRegistryMetadataError"

DE_SCHEMES = {
    "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a": ("classCode", {"1.2.250.1.213.1.1.4.1"}),
    "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983": ("typeCode", {"2.16.840.1.113883.6.1"}),
    "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d": ("formatCode", {"1.3.6.1.4.1.19376.1.2.3"}),
    "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f": (
        "confidentialityCode",
        {"2.16.840.1.113883.5.25", "1.2.250.1.213.1.1.4.13"},
    ),
    "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1": ("healthcareFacilityTypeCode", {"1.2.250.1.71.4.2.4"}),
    "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead": ("practiceSettingCode", {"1.2.250.1.213.1.1.4.9"}),
}
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_PATIENT = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_IDS = {
    "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446": "patientId",
    "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832": "sourceId",
    "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8": "uniqueId",
}
DE_SLOTS = (
    "creationTime",
    "languageCode",
    "legalAuthenticator",
    "serviceStartTime",
    "serviceStopTime",
    "sourcePatientId",
    "hash",
    "size",
)
VISIBILITY = {"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}
TYPE_CODES = {"18748-4"}  # the CR d'imagerie of JDV_J66 this sandbox stands for
UTC_TS = re.compile(r"^\d{14}$")
INS_CX = re.compile(r"^(\d{13})(\d{2})\^\^\^&(1\.2\.250\.1\.213\.1\.4\.(?:8|9|10|11))&ISO\^NH$")
XCN = re.compile(r"^8\d{11}\^[^^]+\^[^^]*\^\^\^\^\^\^&1\.2\.250\.1\.71\.4\.2\.1&ISO\^D\^\^\^IDNPS$")
VIHF_ATTRIBUTES = (
    "VIHF_Version",
    "Secteur_Activite",
    "Ressource_URN",
    "urn:oasis:names:tc:xspa:1.0:subject:subject-id",
    "Identifiant_Structure",
    "LPS_ID",
    "LPS_Nom",
    "LPS_Version",
    "LPS_ID_HOMOLOGATION_DMP",
    "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    "Authentification_Mode",
    "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    "urn:oasis:names:tc:xacml:2.0:subject:role",
)

Finding = tuple[str, str]


def ins_problem(cx: str) -> str | None:
    """Why a patientId is not an INS in CX form with a valid NIR key; None when fine."""
    match = INS_CX.match(cx)
    if not match:
        return "patientId is not <matricule INS>^^^&<INS OID>&ISO^NH"
    n13 = match.group(1)
    if 97 - int(n13) % 97 != int(match.group(2)):
        return "patientId: the INS key does not verify"
    return None


def slots(obj: etree._Element) -> dict[str, list[str]]:
    return {
        s.get("name"): [v.text or "" for v in s.iterfind("rim:ValueList/rim:Value", NS)]
        for s in obj.iterfind("rim:Slot", NS)
    }


def external_ids(obj: etree._Element) -> dict[str, str]:
    return {
        e.get("identificationScheme"): e.get("value", "") for e in obj.iterfind("rim:ExternalIdentifier", NS)
    }


def classifications(obj: etree._Element, scheme: str) -> list[etree._Element]:
    return [c for c in obj.iterfind("rim:Classification", NS) if c.get("classificationScheme") == scheme]


def check_entry(entry: etree._Element) -> list[Finding]:
    found: list[Finding] = []
    values = slots(entry)
    for name in DE_SLOTS:
        if not values.get(name) or not values[name][0]:
            found.append((METADATA_ERROR, f"DocumentEntry slot {name} missing"))
    for name in ("creationTime", "serviceStartTime", "serviceStopTime"):
        if values.get(name) and not UTC_TS.match(values[name][0]):
            found.append((METADATA_ERROR, f"DocumentEntry {name}: YYYYMMDDHHMMSS in UTC expected"))
    if values.get("legalAuthenticator") and not XCN.match(values["legalAuthenticator"][0]):
        found.append((METADATA_ERROR, "DocumentEntry legalAuthenticator: not an XCN with an IdNatPS"))
    if entry.get("mimeType") != "text/xml":
        found.append((METADATA_ERROR, "DocumentEntry mimeType: text/xml expected for a CDA"))
    for scheme, (name, systems) in DE_SCHEMES.items():
        nodes = classifications(entry, scheme)
        if not nodes:
            found.append((METADATA_ERROR, f"DocumentEntry {name} missing"))
        for node in nodes:
            system = slots(node).get("codingScheme", [""])[0]
            if system not in systems:
                found.append((METADATA_ERROR, f"DocumentEntry {name}: coding scheme {system!r} not allowed"))
    for node in classifications(entry, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"):
        if node.get("nodeRepresentation") not in TYPE_CODES:
            found.append((METADATA_ERROR, f"typeCode {node.get('nodeRepresentation')} not in JDV_J66"))
    for node in classifications(entry, "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"):
        if not re.match(r"^SA\d{2}$", node.get("nodeRepresentation", "")):
            found.append((METADATA_ERROR, "healthcareFacilityTypeCode not in JDV_J61"))
    conf = [
        c.get("nodeRepresentation")
        for c in classifications(entry, "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f")
    ]
    if conf and conf[0] not in ("N", "R", "V"):
        found.append((METADATA_ERROR, "confidentialityCode: the first must be the CDA's (N, R or V)"))
    if any(c not in VISIBILITY for c in conf[1:]):
        found.append((METADATA_ERROR, "confidentialityCode: unknown masking / visibility code"))
    authors = classifications(entry, DE_AUTHOR)
    if not authors or not slots(authors[0]).get("authorPerson"):
        found.append((METADATA_ERROR, "DocumentEntry author / authorPerson missing"))
    ids = external_ids(entry)
    if DE_UNIQUE not in ids:
        found.append((METADATA_ERROR, "DocumentEntry uniqueId missing"))
    problem = ins_problem(ids.get(DE_PATIENT, ""))
    if problem:
        found.append(
            ("XDSUnknownPatientId" if "key" in problem else METADATA_ERROR, f"DocumentEntry {problem}")
        )
    return found


def check_submission_set(package: etree._Element, entry_patient: str) -> list[Finding]:
    found: list[Finding] = []
    if not slots(package).get("submissionTime"):
        found.append((METADATA_ERROR, "SubmissionSet submissionTime missing"))
    nodes = [c.get("classificationNode") for c in package.iterfind("rim:Classification", NS)]
    if SS_NODE not in nodes:
        found.append((METADATA_ERROR, "SubmissionSet classification node missing"))
    for scheme, name in ((SS_AUTHOR, "author"), (SS_CONTENT, "contentTypeCode")):
        if not classifications(package, scheme):
            found.append((METADATA_ERROR, f"SubmissionSet {name} missing"))
    ids = external_ids(package)
    for scheme, name in SS_IDS.items():
        if not ids.get(scheme):
            found.append((METADATA_ERROR, f"SubmissionSet {name} missing"))
    if ids.get("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446") != entry_patient:
        found.append(("XDSPatientIdDoesNotMatch", "SubmissionSet and DocumentEntry patientId differ"))
    return found


def vihf_attributes(assertion: etree._Element) -> dict[str, list[etree._Element]]:
    return {
        a.get("Name"): list(a.iterfind("saml2:AttributeValue", NS))
        for a in assertion.iterfind("saml2:AttributeStatement/saml2:Attribute", NS)
    }


def check_vihf(assertion: etree._Element, patient_id: str | None) -> list[Finding]:
    found: list[Finding] = []
    attributes = vihf_attributes(assertion)
    for name in VIHF_ATTRIBUTES:
        if not attributes.get(name):
            found.append(("DMPAccessDenied", f"VIHF attribute {name} missing"))
    resource = attributes.get("urn:oasis:names:tc:xacml:2.0:resource:resource-id")
    if patient_id is not None and resource and resource[0].text != patient_id:
        found.append(("DMPAccessDenied", "VIHF resource-id is not the document's patientId"))
    if assertion.findtext("saml2:Subject/saml2:NameID", namespaces=NS) in (None, ""):
        found.append(("DMPAccessDenied", "VIHF Subject/NameID missing"))
    return found
