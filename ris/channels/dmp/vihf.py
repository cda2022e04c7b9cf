"""The VIHF: the SAML 2.0 assertion that tells the DMP who feeds it, on whose behalf and for which patient
(dmp-xds.md §7), signed with the structure's certificate (enveloped XML-DSig, exclusive c14n, signxml).

Its facts come from the CDA header (the legal authenticator is the professional, the represented
organisation the structure, the recordTarget INS the resource), so the assertion and the metadata cannot
disagree. It is signed standalone and placed as is in an envelope that re-declares none of its
namespaces (library-notes.md §3.y): the digest still matches what is transmitted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree
from signxml import SignatureMethod, XMLSigner, methods

from ris.channels.dmp.codes import FACILITY_TYPE_SYSTEM, INVISIBLE_REPRESENTANTS_LEGAUX, VISIBILITY_SYSTEM
from ris.documents.xds_metadata import CdaHeader

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
PROFESSION = ("10", "Medecin", "1.2.250.1.71.1.2.7")  # TRE_G15 profession of a radiologist


@dataclass(frozen=True)
class Software:
    """The LPS attributes: the software and its DMP homologation number."""

    lps_id: str
    name: str
    version: str
    homologation: str
    vihf_version: str = "4.0"


def issuer(cert_pem: bytes) -> str:
    """The certificate's subject DN (saml2:Issuer, Format X509SubjectName)."""
    return x509.load_pem_x509_certificate(cert_pem).subject.rfc4514_string()


def _attribute(statement: etree._Element, name: str, value: str | None = None) -> etree._Element:
    attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=name)
    if value is not None:
        etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    return attribute


def _ce(attribute: etree._Element, tag: str, code: str, label: str, system: str) -> None:
    value = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue")
    ce = etree.SubElement(value, f"{{{HL7}}}{tag}", nsmap={None: HL7})
    ce.set("code", code)
    ce.set("codeSystem", system)
    ce.set("displayName", label)
    ce.set(f"{{{XSI}}}type", "CE")


def assertion(
    header: CdaHeader,
    software: Software,
    *,
    issued_by: str,
    sector: str,
    now: dt.datetime,
    secret_connection: bool = False,
) -> etree._Element:
    """The unsigned assertion, with a placeholder where the signature goes (after the Issuer)."""
    if header.patient_id is None:
        raise ValueError("CDA recordTarget: no INS, no VIHF resource-id (INS rule 28)")
    instant = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    root = etree.Element(
        f"{{{SAML}}}Assertion",
        {"ID": f"_{uuid.uuid4()}", "IssueInstant": instant, "Version": "2.0"},
        nsmap={"saml2": SAML, "xsi": XSI},
    )
    etree.SubElement(
        root, f"{{{SAML}}}Issuer", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
    ).text = issued_by
    etree.SubElement(root, f"{{{DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS})
    etree.SubElement(
        etree.SubElement(root, f"{{{SAML}}}Subject"), f"{{{SAML}}}NameID"
    ).text = header.legal_authenticator_id
    authn = etree.SubElement(root, f"{{{SAML}}}AuthnStatement", AuthnInstant=instant)
    etree.SubElement(
        etree.SubElement(authn, f"{{{SAML}}}AuthnContext"), f"{{{SAML}}}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
    statement = etree.SubElement(root, f"{{{SAML}}}AttributeStatement")
    _attribute(statement, "VIHF_Version", software.vihf_version)
    _attribute(statement, "Secteur_Activite", f"{sector}^{FACILITY_TYPE_SYSTEM}")
    _attribute(statement, "Ressource_URN", "urn:dmp")
    _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:subject-id", header.legal_authenticator_name)
    _attribute(statement, "Identifiant_Structure", header.structure_id)
    _attribute(statement, "LPS_ID", software.lps_id)
    _attribute(statement, "LPS_Nom", software.name)
    _attribute(statement, "LPS_ID_HOMOLOGATION_DMP", software.homologation)
    _attribute(statement, "LPS_Version", software.version)
    _attribute(statement, "urn:oasis:names:tc:xacml:2.0:resource:resource-id", header.patient_id)
    _attribute(statement, "Authentification_Mode", "INDIRECTE")
    purpose = _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")
    _ce(purpose, "PurposeOfUse", "normal", "Acces normal", "1.2.250.1.213.1.1.4.248")
    role = _attribute(statement, "urn:oasis:names:tc:xacml:2.0:subject:role")
    _ce(role, "Role", *PROFESSION)
    spec = header.author_specialty
    _ce(role, "Role", spec.code, spec.label, spec.system)
    if secret_connection:  # dmp-xds.md §5: the connexion secrète, as the TRANS mapping reads it
        secret = _attribute(
            statement, "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"
        )
        _ce(
            secret,
            "ConfidentialityCode",
            INVISIBLE_REPRESENTANTS_LEGAUX,
            "Connexion secrète",
            VISIBILITY_SYSTEM,
        )
    return root


def sign(unsigned: etree._Element, key: PrivateKeyTypes, cert_pem: bytes) -> etree._Element:
    """Enveloped RSA-SHA256 (or ECDSA-SHA256 for an EC key) signature over the whole assertion (reference
    #ID), exclusive c14n."""
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=(
            SignatureMethod.ECDSA_SHA256
            if isinstance(key, ec.EllipticCurvePrivateKey)
            else SignatureMethod.RSA_SHA256
        ),
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    return signer.sign(
        unsigned,
        key=key,
        cert=cert_pem.decode(),
        reference_uri=f"#{unsigned.get('ID')}",
        id_attribute="ID",
    )
