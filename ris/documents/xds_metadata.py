"""What the XDS metadata of a CDA say, read once from its header for the DMP's ITI-41 and for the XDM's
METADATA.XML of an MSSanté mail (which carry the same values, mssante.md §6), plus the identities the
DMP's VIHF names. Read from the very bytes that are sent, so that the metadata and the document cannot
disagree (dmp-xds.md §3). How each channel lays these values out (ebRIM ids, codes it adds) stays in
the channel."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from lxml import etree

from ris.documents.cda import FINESS_ROOT, RPPS_ROOT
from ris.identity.nir import INS_OIDS

NS = {"h": "urn:hl7-org:v3", "ps3": "urn:dicom-org:ps3-20"}


class CdaHeaderError(ValueError):
    """The CDA lacks what the XDS metadata require (names the element)."""


@dataclass(frozen=True)
class Coded:
    code: str
    label: str
    system: str


@dataclass(frozen=True)
class CdaHeader:
    unique_id: str
    title: str
    creation_time: str  # UTC YYYYMMDDHHMMSS
    confidentiality: str
    confidentiality_label: str  # the CDA's displayName, "" when it gives none
    language: str
    type_code: Coded
    patient_id: str | None  # INS as CX: <matricule>^^^&<oid>&ISO^NH; None when the CDA carries none
    source_patient_id: str
    source_patient_info: tuple[str, ...]
    author: str  # XCN
    author_institution: str  # XON
    author_specialty: Coded
    legal_authenticator: str  # XCN
    legal_authenticator_id: str  # IdNatPS (8 + RPPS)
    legal_authenticator_name: str
    structure_id: str  # IdNatStruct of the represented organisation (1 + FINESS)
    service_start: str
    service_stop: str
    facility_type: Coded
    practice_setting: Coded
    encounter_code: str
    events: tuple[Coded, ...]
    reference_ids: tuple[str, ...]
    sha1: str
    size: int


def utc(value: str) -> str:
    """A CDA TS with its offset (YYYYMMDDHHMMSS+ZZZZ) as the UTC YYYYMMDDHHMMSS of the XDS slots."""
    moment = dt.datetime.strptime(value, "%Y%m%d%H%M%S%z")
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def _one(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    if not found or not str(found[0]).strip():
        raise CdaHeaderError(f"CDA {path.replace('h:', '')}: missing, required by the XDS metadata")
    return str(found[0])


def _opt(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    return str(found[0]) if found else ""


def _coded(root: etree._Element, path: str) -> Coded:
    return Coded(
        _one(root, f"{path}/@code"), _opt(root, f"{path}/@displayName"), _one(root, f"{path}/@codeSystem")
    )


def _xcn(entity: etree._Element, person: str) -> tuple[str, str, str]:
    """XCN of a professional (id ^ family ^ given ... ^ assigning authority ^ D ^^^ IDNPS), its IdNatPS
    and display name."""
    idnat = _one(entity, f"h:id[@root='{RPPS_ROOT}']/@extension")
    family = _one(entity, f"h:{person}/h:name/h:family/text()")
    given = _opt(entity, f"h:{person}/h:name/h:given/text()")
    xcn = f"{idnat}^{family}^{given}^^^^^^&{RPPS_ROOT}&ISO^D^^^IDNPS"
    return xcn, idnat, " ".join(p for p in (given, family) if p)


def read(cda: bytes) -> CdaHeader:
    """The header of `cda`; CdaHeaderError names the first element the XDS metadata miss."""
    root = etree.fromstring(cda, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    patient = root.find("h:recordTarget/h:patientRole", NS)
    if patient is None:
        raise CdaHeaderError("CDA recordTarget/patientRole: missing")
    ins = [i for i in patient.findall("h:id", NS) if i.get("root") in INS_OIDS]
    local = [i for i in patient.findall("h:id", NS) if i.get("root") not in INS_OIDS]
    patient_id = f"{ins[0].get('extension')}^^^&{ins[0].get('root')}&ISO^NH" if ins else None
    source = local[0] if local else (ins[0] if ins else None)
    if source is None:
        raise CdaHeaderError("CDA recordTarget/patientRole/id: missing")
    kind = "PI" if local else "NH"
    source_patient_id = f"{source.get('extension')}^^^&{source.get('root')}&ISO^{kind}"
    person = patient.find("h:patient", NS)
    family = _opt(person, "h:name/h:family[@qualifier='BR']/text()") or _opt(person, "h:name/h:family/text()")
    given = _opt(person, "h:name/h:given[@qualifier='BR']/text()") or _opt(person, "h:name/h:given/text()")
    info = [f"PID-5|{family}^{given}^^^^^L", f"PID-7|{_opt(person, 'h:birthTime/@value')}"]
    sex = _opt(person, "h:administrativeGenderCode/@code")
    if sex in ("F", "M"):
        info.append(f"PID-8|{sex}")

    author = root.find("h:author/h:assignedAuthor", NS)
    legal = root.find("h:legalAuthenticator/h:assignedEntity", NS)
    if author is None or legal is None:
        raise CdaHeaderError("CDA author/assignedAuthor and legalAuthenticator/assignedEntity: required")
    author_xcn, _, _ = _xcn(author, "assignedPerson")
    legal_xcn, legal_id, legal_name = _xcn(legal, "assignedPerson")
    org = "h:representedOrganization"
    structure_id = _one(author, f"{org}/h:id[@root='{FINESS_ROOT}']/@extension")
    institution = f"{_one(author, f'{org}/h:name/text()')}^^^^^&{FINESS_ROOT}&ISO^IDNST^^^{structure_id}"

    event = "h:documentationOf/h:serviceEvent"
    events = tuple(
        Coded(t.get("code"), t.get("displayName", ""), t.get("codeSystem"))
        for t in root.xpath(f"{event}/h:code/h:translation", namespaces=NS)
    )
    refs = []
    accession = root.find("h:inFulfillmentOf/h:order/ps3:accessionNumber", NS)
    if accession is not None:
        refs.append(
            f"{accession.get('extension')}^^^&{accession.get('root')}&ISO^urn:ihe:iti:xds:2013:accession"
        )
    study = _opt(root, f"{event}/h:id/@root")
    if study:
        site = local[0].get("root") if local else FINESS_ROOT
        refs.append(f"{study}^^^&{site}&ISO^urn:ihe:iti:xds:2016:studyInstanceUID")
    order = root.find("h:inFulfillmentOf/h:order/h:id", NS)
    if order is not None:
        refs.append(f"{order.get('extension')}^^^&{order.get('root')}&ISO^urn:ihe:iti:xds:2013:order")
    return CdaHeader(
        unique_id=_one(root, "h:id/@root"),
        title=_one(root, "h:title/text()"),
        creation_time=utc(_one(root, "h:effectiveTime/@value")),
        confidentiality=_one(root, "h:confidentialityCode/@code"),
        confidentiality_label=_opt(root, "h:confidentialityCode/@displayName"),
        language=_one(root, "h:languageCode/@code"),
        type_code=_coded(root, "h:code"),
        patient_id=patient_id,
        source_patient_id=source_patient_id,
        source_patient_info=tuple(info),
        author=author_xcn,
        author_institution=institution,
        author_specialty=_coded(author, "h:code"),
        legal_authenticator=legal_xcn,
        legal_authenticator_id=legal_id,
        legal_authenticator_name=legal_name,
        structure_id=structure_id,
        service_start=utc(_one(root, f"{event}/h:effectiveTime/h:low/@value")),
        service_stop=utc(_one(root, f"{event}/h:effectiveTime/h:high/@value")),
        facility_type=_coded(
            root, "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code"
        ),
        practice_setting=_coded(
            root, f"{event}/h:performer/h:assignedEntity/{org}/h:standardIndustryClassCode"
        ),
        encounter_code=_opt(root, "h:componentOf/h:encompassingEncounter/h:code/@code"),
        events=events,
        reference_ids=tuple(refs),
        sha1=hashlib.sha1(cda).hexdigest(),  # the XDS hash slot is SHA-1 by definition
        size=len(cda),
    )
