"""Identifiers of the XDS.b metadata model and the French value sets the DMP checks (dmp-xds.md §3-§5)."""

from __future__ import annotations

# ebRIM classification schemes and external identifier schemes (IHE ITI TF-3 4.2.5)
DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FACILITY_TYPE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_EVENT = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"

# Value sets
LOINC = "2.16.840.1.113883.6.1"
CLASS_CODE = ("31", "Imagerie médicale", "1.2.250.1.213.1.1.4.1")  # TRE_A03, 18748-4 -> 31 (ASS_X04)
FORMAT_CODE = (
    "urn:ihe:iti:xds-sd:pdf:2008",
    "Document à corps non structuré en Pdf/A-1",
    "1.3.6.1.4.1.19376.1.2.3",
)
HL7_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
VISIBILITY_SYSTEM = "1.2.250.1.213.1.1.4.13"  # TRE_A07-StatutVisibiliteDocument
MASQUE_PS = "MASQUE_PS"
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"
VISIBILITY_LABELS = {
    MASQUE_PS: "Masqué aux professionnels de santé",
    INVISIBLE_PATIENT: "Non visible par le patient",
    INVISIBLE_REPRESENTANTS_LEGAUX: "Non visible par les représentants légaux du patient",
}
CONFIDENTIALITY_LABELS = {"N": "Normal", "R": "Restreint", "V": "Très restreint"}
# JDV_J59-ContentTypeCode-DMP from the encounter (PV1-2 mapping of dmp-xds.md §4, via the CDA's
# encompassingEncounter code); the coding scheme is the DRIM example's (open point).
CONTENT_TYPE_SYSTEM = "1.2.250.1.213.2.2"
CONTENT_TYPES = {
    "IMP": ("03", "Hospitalisation complète"),
    "EMER": ("07", "Consultation externe"),
    "AMB": ("07", "Consultation externe"),
    "EXTERNE": ("07", "Consultation externe"),
    "SEANCE": ("19", "Séance"),
}
CONTENT_TYPE_DEFAULT = ("97", "Autre")

FACILITY_TYPE_SYSTEM = "1.2.250.1.71.4.2.4"
