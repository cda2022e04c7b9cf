"""The report as a CDA R2 level 1 document (CI-SIS Structuration minimale, cda-cr-ima.md §1-5, §9).

Element order follows the CDA schema. Validated = legally authenticated (signatureCode S). The INS and
its traits go into recordTarget only for a qualified identity (INS rule 28). Ids are root-only.
"""

from __future__ import annotations

import base64
import datetime as dt

from lxml import etree

from ris.documents.facts import SEX_LABELS, Facts, Person
from ris.identity.nir import INS_OIDS
from ris.site.settings import SiteSettings

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PS3_20 = "urn:dicom-org:ps3-20"
NSMAP = {None: HL7, "xsi": XSI, "ps3-20": PS3_20}

TEMPLATE_IDS = ("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1", "1.3.6.1.4.1.19376.1.2.20")
LOINC = "2.16.840.1.113883.6.1"
DCM = "1.2.840.10008.2.16.4"
RPPS_ROOT = "1.2.250.1.71.4.2.1"  # id = "8" + RPPS
FINESS_ROOT = "1.2.250.1.71.4.2.2"  # id = "1" + FINESS
J01_SYSTEM = "1.2.250.1.213.1.1.4.5"
J04_SYSTEM = "1.2.250.1.213.1.1.4.9"
J02_SYSTEM = "1.2.250.1.71.4.2.4"
ACT_CODE = "2.16.840.1.113883.5.4"
TYPE_RENCONTRE = "1.2.250.1.213.1.1.4.2.291"
CONFIDENTIALITY = {"N": "Normal", "R": "Restreint", "V": "Très restreint"}
DOCUMENT_TYPE = ("18748-4", "CR d'imagerie médicale")  # RIS.CRR.07, JDV_J66 / J07


def order_root(settings: SiteSettings) -> str:
    """Placer order numbers are minted under the site OID, arc .1 (inFulfillmentOf/order/id)."""
    return f"{settings.facility.oid}.1"


def accession_root(settings: SiteSettings) -> str:
    """Accession numbers are minted under the site OID, arc .2 (ps3-20:accessionNumber, XDS refs)."""
    return f"{settings.facility.oid}.2"


def ts(moment: dt.datetime) -> str:
    """YYYYMMDDHHMMSS+ZZZZ (the moment is aware, in the site's zone)."""
    return moment.strftime("%Y%m%d%H%M%S%z")


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{HL7}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def _rpps_id(parent: etree._Element, person: Person) -> None:
    if person.rpps:
        _el(parent, "id", root=RPPS_ROOT, extension=f"8{person.rpps}")
    else:
        _el(parent, "id", nullFlavor="UNK")


def _name(parent: etree._Element, person: Person) -> None:
    name = _el(parent, "name")
    if person.given:
        _el(name, "given", person.given)
    _el(name, "family", person.family)
    if person.title and person.title.upper().rstrip(".") in ("DR", "PR"):
        _el(name, "suffix", person.title.upper().rstrip("."))  # J246 Titre: DR, PR


def _addr(parent: etree._Element, settings: SiteSettings) -> None:
    facility = settings.facility
    addr = _el(parent, "addr")
    _el(addr, "streetName", facility.street)
    _el(addr, "postalCode", facility.postal_code)
    _el(addr, "city", facility.city)


def _telecom(parent: etree._Element, phone: str, use: str | None = None) -> None:
    value = "tel:" + "".join(c for c in phone if c.isdigit() or c == "+")
    if use:
        _el(parent, "telecom", value=value, use=use)
    else:
        _el(parent, "telecom", value=value)


def _organisation(parent: etree._Element, tag: str, settings: SiteSettings, *, industry: bool) -> None:
    facility = settings.facility
    org = _el(parent, tag)
    _el(org, "id", root=FINESS_ROOT, extension=f"1{facility.finess_geo}")
    _el(org, "name", facility.name)
    _telecom(org, facility.phone)
    _addr(org, settings)
    if industry:
        _el(
            org,
            "standardIndustryClassCode",
            code=facility.practice_setting_code,
            displayName=facility.practice_setting_label,
            codeSystem=J04_SYSTEM,
        )


def _radiologist(parent: etree._Element, tag: str, person: Person, settings: SiteSettings) -> None:
    """assignedAuthor / assignedEntity of a radiologist of the site (id, J01 code, name, structure)."""
    entity = _el(parent, tag)
    _rpps_id(entity, person)
    code, label = person.specialty
    _el(entity, "code", code=code, displayName=label, codeSystem=J01_SYSTEM)
    if person.mss_address:
        _el(entity, "telecom", value=f"mailto:{person.mss_address}", use="WP")
    _name(_el(entity, "assignedPerson"), person)
    _organisation(entity, "representedOrganization", settings, industry=True)


def carries_ins(cda: bytes) -> bool:
    """Whether a CDA's recordTarget holds an INS: such a document may only leave for a qualified
    identity (INS rule 28, evaluated again at send time)."""
    root = etree.fromstring(cda, parser=etree.XMLParser(resolve_entities=False, huge_tree=True))
    roots = root.xpath("/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id/@root", namespaces={"h": HL7})
    return any(str(r) in INS_OIDS for r in roots)


def _record_target(doc: etree._Element, facts: Facts, settings: SiteSettings) -> None:
    patient = facts.patient
    role = _el(_el(doc, "recordTarget"), "patientRole")
    if facts.ins_qualified:
        _el(role, "id", root=patient.ins_oid, extension=patient.ins_matricule)
    _el(role, "id", root=settings.facility.oid, extension=patient.ipp)
    if patient.street or patient.postal_code or patient.city:
        addr = _el(role, "addr")
        for tag, value in (
            ("streetName", patient.street),
            ("postalCode", patient.postal_code),
            ("city", patient.city),
        ):
            if value:
                _el(addr, tag, value)
    if facts.ins_qualified:
        _el(role, "telecom", value=f"mailto:{patient.ins_matricule}@patient.mssante.fr")
    person = _el(role, "patient", classCode="PSN")
    name = _el(person, "name")
    _el(name, "family", patient.birth_name, qualifier="BR")
    _el(name, "given", patient.birth_given_names or patient.first_birth_given_name)
    _el(name, "given", patient.first_birth_given_name, qualifier="BR")
    if patient.used_name:
        _el(name, "family", patient.used_name, qualifier="CL")
    if patient.used_given_name:
        _el(name, "given", patient.used_given_name, qualifier="CL")
    sex = "UN" if patient.sex == "U" else patient.sex
    _el(
        person,
        "administrativeGenderCode",
        code=sex,
        displayName=SEX_LABELS[patient.sex],
        codeSystem="2.16.840.1.113883.5.1",
    )
    _el(person, "birthTime", value=patient.birth_date.strftime("%Y%m%d"))
    if patient.birth_place_code:
        _el(_el(_el(_el(person, "birthplace"), "place"), "addr"), "county", patient.birth_place_code)


def _requester(doc: etree._Element, facts: Facts) -> None:
    """RIS.DOC.05: the requester (participant REF) with its MSSanté address."""
    person = facts.requester
    if person is None:
        return
    participant = _el(doc, "participant", typeCode="REF")
    _el(participant, "time", nullFlavor="NA")
    entity = _el(participant, "associatedEntity", classCode="PROV")
    _rpps_id(entity, person)
    if person.mss_address:
        _el(entity, "telecom", value=f"mailto:{person.mss_address}")
    _name(_el(entity, "associatedPerson"), person)


def _service_event(doc: etree._Element, facts: Facts, settings: SiteSettings) -> None:
    exam = facts.exam
    event = _el(_el(doc, "documentationOf"), "serviceEvent", classCode="ACT")
    _el(event, "id", root=exam.study_instance_uid)
    code = _el(
        event,
        "code",
        code=exam.exam_code,
        displayName=exam.exam_label,
        codeSystem=LOINC,
        codeSystemName="LOINC",
    )
    if exam.ccam_code:
        _el(code, "translation", code=exam.ccam_code, codeSystem="1.2.250.1.213.2.5", codeSystemName="CCAM")
    modality = _el(
        code,
        "translation",
        code=exam.modality,
        displayName=facts.modality_label,
        codeSystem=DCM,
        codeSystemName="DCM",
    )
    _el(
        _el(modality, "qualifier"),
        "name",
        code="121139",
        displayName="Modalité d'imagerie",
        codeSystem=DCM,
        codeSystemName="DCM",
    )
    _effective_range(event, facts)
    performer = _el(event, "performer", typeCode="PRF")
    _radiologist(performer, "assignedEntity", facts.author, settings)


def _effective_range(parent: etree._Element, facts: Facts) -> None:
    span = _el(parent, "effectiveTime")
    _el(span, "low", value=ts(facts.exam_started_at))
    _el(span, "high", value=ts(facts.exam_ended_at or facts.exam_started_at))


def encounter_code(encounter_class: str, settings: SiteSettings) -> tuple[str, str, str]:
    """PV1-2 patient class -> JDV_J142_TypeRencontre_CISIS (code, displayName, codeSystem)."""
    if encounter_class == "I":
        return "IMP", "Hospitalisation (établissement, y compris HAD)", ACT_CODE
    if encounter_class == "E":
        return "EMER", "Passage aux urgences (établissement)", ACT_CODE
    if encounter_class == "R":
        return "SEANCE", "Séance (établissement ou libéral)", TYPE_RENCONTRE
    if settings.facility.practice_setting_code == "AMBULATOIRE":
        return "AMB", "Ambulatoire (hors établissement)", ACT_CODE
    return "EXTERNE", "Acte et consultation externe (établissement)", TYPE_RENCONTRE


def _encounter(doc: etree._Element, facts: Facts, settings: SiteSettings) -> None:
    facility = settings.facility
    encounter = _el(_el(doc, "componentOf"), "encompassingEncounter")
    code, label, system = encounter_code(facts.exam.encounter_class, settings)
    _el(encounter, "code", code=code, displayName=label, codeSystem=system)
    _effective_range(encounter, facts)
    place = _el(_el(encounter, "location"), "healthCareFacility")
    _el(place, "id", root=FINESS_ROOT, extension=f"1{facility.finess_geo}")
    _el(
        place,
        "code",
        code=facility.facility_type_code,
        displayName=facility.facility_type_label,
        codeSystem=J02_SYSTEM,
    )
    location = _el(place, "location")
    _el(location, "name", facility.name)
    _addr(location, settings)


def render(facts: Facts, settings: SiteSettings, pdf: bytes) -> bytes:
    """The CDA R2 N1 document, UTF-8, with `pdf` in its nonXMLBody."""
    doc = etree.Element(f"{{{HL7}}}ClinicalDocument", nsmap=NSMAP)
    _el(doc, "realmCode", code="FR")
    _el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for root in TEMPLATE_IDS:
        _el(doc, "templateId", root=root)
    _el(doc, "id", root=facts.document_id)
    _el(
        doc,
        "code",
        code=DOCUMENT_TYPE[0],
        displayName=DOCUMENT_TYPE[1],
        codeSystem=LOINC,
        codeSystemName="LOINC",
    )
    _el(doc, "title", f"CR d'imagerie médicale – {facts.exam.exam_label}")
    _el(doc, "effectiveTime", value=ts(facts.created_at))
    _el(
        doc,
        "confidentialityCode",
        code=facts.confidentiality,
        displayName=CONFIDENTIALITY[facts.confidentiality],
        codeSystem="2.16.840.1.113883.5.25",
    )
    _el(doc, "languageCode", code="fr-FR")
    _el(doc, "setId", root=facts.set_id)
    _el(doc, "versionNumber", value=str(facts.version))
    _record_target(doc, facts, settings)

    author = _el(doc, "author")
    _el(author, "time", value=ts(facts.validated_at))
    _radiologist(author, "assignedAuthor", facts.author, settings)

    custodian = _el(_el(doc, "custodian"), "assignedCustodian")
    _organisation(custodian, "representedCustodianOrganization", settings, industry=False)

    legal = _el(doc, "legalAuthenticator")
    _el(legal, "time", value=ts(facts.validated_at))
    _el(legal, "signatureCode", code="S")
    _radiologist(legal, "assignedEntity", facts.validator, settings)

    _requester(doc, facts)
    order = _el(_el(doc, "inFulfillmentOf"), "order")
    _el(order, "id", root=order_root(settings), extension=facts.exam.order_id)
    etree.SubElement(
        order,
        f"{{{PS3_20}}}accessionNumber",
        root=accession_root(settings),
        extension=facts.exam.accession_number,
    )
    _service_event(doc, facts, settings)
    if facts.previous_document_id:
        related = _el(doc, "relatedDocument", typeCode="RPLC")
        _el(_el(related, "parentDocument"), "id", root=facts.previous_document_id)
    _encounter(doc, facts, settings)

    body = _el(_el(doc, "component"), "nonXMLBody")
    _el(
        body, "text", base64.b64encode(pdf).decode("ascii"), mediaType="application/pdf", representation="B64"
    )
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)
