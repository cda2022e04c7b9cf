"""SOAP 1.2 envelopes of the DMP transactions (WS-Addressing, wsse:Security with the VIHF) and the reading
of the registry's answer: Success, or each RegistryError mapped to what a user understands; transient
registry errors are told apart from refusals (dmp-xds.md §8, §11)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from lxml import etree

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"

# What each registry error means to the radiologist or the secretary who reads the delivery's reason.
EXPLAINED = {
    "XDSDuplicateUniqueIdInRegistry": "the DMP already holds another document with this document id",
    "DMPClosed": "the patient's DMP is closed",
    "DMPPatientNotFound": "the patient has no DMP (INS unknown to the DMP)",
    "XDSUnknownPatientId": "the patient has no DMP (INS unknown to the DMP)",
    "XDSPatientIdDoesNotMatch": "the patient of the metadata and of the document differ",
    "XDSRegistryMetadataError": "the DMP refused the document's metadata",
    "XDSRepositoryMetadataError": "the DMP refused the document's metadata",
    "XDSNonIdenticalHash": "the document's hash does not match its metadata",
    "XDSNonIdenticalSize": "the document's size does not match its metadata",
    "UnresolvedReferenceException": "the DMP does not know the document this one replaces or updates",
    "XDSUnknownDocument": "the DMP does not know this document",
    "DMPAccessDenied": "the DMP refused the structure's credentials (VIHF)",
}
TRANSIENT = frozenset(
    {"XDSRegistryBusy", "XDSRepositoryBusy", "XDSRegistryOutOfResources", "XDSRepositoryOutOfResources"}
)


# A registry may echo identifiers in its error text: an INS or any long number never reaches a log.
_IDENTIFIERS = re.compile(r"\d{9,}|\^\^\^&[^\s'\"]*")


@dataclass(frozen=True)
class RegistryError:
    code: str
    context: str

    @property
    def explained(self) -> str:
        meaning = EXPLAINED.get(self.code, "the DMP refused the submission")
        context = _IDENTIFIERS.sub("…", self.context)[:200]
        return f"DMP {self.code}: {meaning}" + (f" ({context})" if context else "")


@dataclass(frozen=True)
class Answer:
    success: bool
    errors: tuple[RegistryError, ...] = ()
    relates_to: str = ""
    fault: str | None = None  # SOAP fault code (Sender / Receiver) and reason
    fault_is_receiver: bool = False

    @property
    def transient(self) -> bool:
        return self.fault_is_receiver or (bool(self.errors) and all(e.code in TRANSIENT for e in self.errors))

    @property
    def reason(self) -> str:
        if self.fault:
            return f"DMP SOAP fault {self.fault}"
        return "; ".join(e.explained for e in self.errors) or "DMP answered Failure without an error"


def envelope(
    action: str, to: str, message_id: str, body: etree._Element, vihf: etree._Element | None
) -> bytes:
    """The request envelope, serialised once and without an XML declaration."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP}}}mustUnderstand": "1"}).text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id
    etree.SubElement(header, f"{{{WSA}}}To", {f"{{{SOAP}}}mustUnderstand": "1"}).text = to
    etree.SubElement(etree.SubElement(header, f"{{{WSA}}}ReplyTo"), f"{{{WSA}}}Address").text = ANONYMOUS
    if vihf is not None:
        security = etree.SubElement(
            header, f"{{{WSSE}}}Security", {f"{{{SOAP}}}mustUnderstand": "1"}, nsmap={"wsse": WSSE}
        )
        security.append(vihf)
    etree.SubElement(env, f"{{{SOAP}}}Body").append(body)
    return etree.tostring(env, encoding="UTF-8", xml_declaration=False)


def root_part(content_type: str, body: bytes) -> bytes:
    """The SOAP envelope of an answer, whether plain or MTOM-wrapped."""
    if not content_type.lower().startswith("multipart/"):
        return body
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    start = message.get_param("start")
    for part in message.iter_parts():
        if start is None or part.get("Content-ID", "") == start:
            return part.get_payload(decode=True)
    raise ValueError("DMP answer: the MTOM root part named by start= is missing")


def read_answer(content_type: str, body: bytes) -> Answer:
    """Parse the registry's SOAP 1.2 answer (RegistryResponse or Fault)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(root_part(content_type, body), parser)
    ns = {"s": SOAP, "wsa": WSA, "rs": RS}
    relates = root.findtext("s:Header/wsa:RelatesTo", default="", namespaces=ns)
    fault = root.find("s:Body/s:Fault", ns)
    if fault is not None:
        code = fault.findtext("s:Code/s:Value", default="", namespaces=ns).split(":")[-1]
        sub = fault.findtext("s:Code/s:Subcode/s:Value", default="", namespaces=ns)
        text = _IDENTIFIERS.sub("…", fault.findtext("s:Reason/s:Text", default="", namespaces=ns))[:200]
        label = " ".join(p for p in (code, sub, text) if p)
        return Answer(False, relates_to=relates, fault=label, fault_is_receiver=code == "Receiver")
    response = root.find("s:Body/rs:RegistryResponse", ns)
    if response is None:
        raise ValueError("DMP answer: no RegistryResponse in the SOAP body")
    errors = tuple(
        RegistryError(e.get("errorCode", ""), e.get("codeContext", ""))
        for e in response.iterfind("rs:RegistryErrorList/rs:RegistryError", ns)
        if e.get("severity", "").endswith("Error")
    )
    return Answer(response.get("status") == SUCCESS and not errors, errors, relates)
