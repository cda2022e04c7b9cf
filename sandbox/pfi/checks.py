"""What the sandbox PFI checks before accepting a document (TRANS IG rules as a GESTIONNAIRE applies them).

Written from the spec, not from the engine's code. A message that can never pass is refused with AR and
an ERR (table 0357); AE is kept for temporary trouble (the fault switch).
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from sandbox.pfi.wire import Seg, split

SUPPORTED = {("ORU", "R01"): "2.5", ("MDM", "T02"): "2.6", ("MDM", "T10"): "2.6", ("MDM", "T04"): "2.6"}
ORC_FOR = {"NW": "F", "RO": "C", "CA": "D"}  # ORC-1 -> document OBX-11
TRIGGER_FOR = {"NW": "T02", "RO": "T10", "CA": "T04"}
REQUIRED_METADATA = (
    "MASQUE_PS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REP_LEGAUX",
    "CONNEXION_SECRETE",
    "MODIF_CONF_CODE",
    "DESTDMP",
    "DESTMSSANTEPS",
    "DESTMSSANTEPAT",
)
# regles-gestion-mssante.md: the exhaustive list of accepted combinations when MSSanté is a destination.
MATRIX = (
    ("N", "N", "N", "NY", "NY", "NY", "Y", "Y"),
    ("N", "Y", "N", "NY", "NY", "NY", "Y", "N"),
    ("NY", "N", "NY", "N", "NY", "N", "N", "Y"),
)
ED_DATA = re.compile(r"(OBX\|[^|]*\|ED\|[^|]*\|[^|]*\|\^[^^|]*\^[^^|]*\^[^^|]*\^)[^|\r]*")
CDA_ROOT = "{urn:hl7-org:v3}ClinicalDocument"
PATIENT_DOMAIN = "@patient.mssante.fr"


@dataclass(frozen=True)
class Problem:
    code: str  # table 0357
    label: str
    location: str  # ERR-2, e.g. OBX^1^5
    detail: str


@dataclass
class Recipient:
    identifier: str  # PRT-5.1 (or PRT-10 for an application)
    address: str  # PRT-15.4

    @property
    def is_patient(self) -> bool:
        return self.address.lower().endswith(PATIENT_DOMAIN)


@dataclass
class Facts:
    control_id: str
    message_type: str
    trigger: str
    version: str
    sender: tuple[str, str]  # MSH-3, MSH-4
    flags: dict[str, str] = field(default_factory=dict)
    recipients: list[Recipient] = field(default_factory=list)
    cda: bytes = b""


def make_problem(code: str, location: str, detail: str) -> Problem:
    labels = {
        "100": "Segment sequence error",
        "101": "Required field missing",
        "102": "Data type error",
        "103": "Table value not found",
        "199": "Other HL7 Error",
        "200": "Unsupported message type",
        "201": "Unsupported event code",
        "202": "Unsupported processing id",
        "203": "Unsupported version id",
        "207": "Application internal error",
    }
    return Problem(code, labels[code], location, detail)


def header(segments: list[Seg]) -> Facts | Problem:
    if not segments or segments[0].name != "MSH":
        return make_problem("100", "MSH", "the message does not start with MSH")
    msh = segments[0]
    facts = Facts(
        control_id=msh.f(10),
        message_type=msh.c(9, 1),
        trigger=msh.c(9, 2),
        version=msh.f(12),
        sender=(msh.f(3), msh.f(4)),
    )
    if not facts.control_id:
        return make_problem("101", "MSH^1^10", "MSH-10 message control id is empty")
    if facts.message_type not in ("ORU", "MDM"):
        return make_problem(
            "200", "MSH^1^9", f"message type {facts.message_type!r}: ORU, MDM or ADT A31 / A47 expected"
        )
    expected_version = SUPPORTED.get((facts.message_type, facts.trigger))
    if expected_version is None:
        return make_problem(
            "201", "MSH^1^9", f"event {facts.trigger!r} is not supported for {facts.message_type}"
        )
    if facts.version != expected_version:
        return make_problem("203", "MSH^1^12", f"{facts.message_type} must be HL7 {expected_version}")
    if msh.f(11) not in ("P", "T", "D"):
        return make_problem("202", "MSH^1^11", "processing id must be P, T or D")
    if "CISIS_CDA_HL7_V2" not in msh.f(21):
        return make_problem("101", "MSH^1^21", "MSH-21 must declare the 2.1^CISIS_CDA_HL7_V2 profile")
    return facts


def structure(message: str) -> Problem | None:
    """hl7apy STRICT on a copy without the base64 data and the PRT (pre-adopted, unknown to 2.5 / 2.6)."""
    short = ED_DATA.sub(r"\1PLACEHOLDER", message.replace("\n", "\r"))
    short = "\r".join(s for s in short.split("\r") if s and not s.startswith("PRT|"))
    try:
        ok = parse_message(short, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    except Exception as exc:  # hl7apy raises many unrelated exception types
        return make_problem("199", "", f"structure: {type(exc).__name__}: {exc}"[:300])
    return None if ok else make_problem("199", "", "structure: hl7apy validation failed")


def check(message: str, *, matrix_check: bool = True) -> tuple[Facts | None, Problem | None]:
    segments = split(message)
    facts = header(segments)
    if isinstance(facts, Problem):
        return None, facts
    problem = structure(message)
    if problem:
        return facts, problem
    orc = next((s for s in segments if s.name == "ORC"), None)
    obx_positions = [i for i, s in enumerate(segments) if s.name == "OBX"]
    if orc is None or not obx_positions:
        return facts, make_problem(
            "100", "ORC" if orc is None else "OBX", "ORC and a document OBX are required"
        )
    action = orc.f(1)
    if action not in ORC_FOR:
        return facts, make_problem("103", "ORC^1^1", f"ORC-1 {action!r}: NW, RO or CA expected")
    document = segments[obx_positions[0]]
    if facts.message_type == "MDM" and TRIGGER_FOR[action] != facts.trigger:
        return facts, make_problem("207", "ORC^1^1", f"ORC-1 {action} disagrees with trigger {facts.trigger}")
    if document.f(2) != "ED" or document.f(11) != ORC_FOR[action]:
        return facts, make_problem(
            "207", "OBX^1^11", f"document OBX-11 {document.f(11)!r} disagrees with ORC-1 {action}"
        )
    obr = next((s for s in segments if s.name == "OBR"), None)
    if obr is None or obr.c(4, 1) != document.c(3, 1):
        return facts, make_problem("207", "OBR^1^4", "OBR-4 must equal the document OBX-3")
    problem = _payload(document, facts)
    if problem:
        return facts, problem
    problem = _participants(segments, obx_positions[0], facts)
    if problem:
        return facts, problem
    problem = _metadata(segments[obx_positions[0] + 1 :], facts)
    if problem:
        return facts, problem
    return facts, (_matrix(facts) if matrix_check else None)


def _payload(document: Seg, facts: Facts) -> Problem | None:
    if document.c(5, 3).upper() != "XML" or document.c(5, 4).lower() != "base64":
        return make_problem("102", "OBX^1^5", "OBX-5 must be ^text^XML^Base64^<data>")
    try:
        facts.cda = base64.b64decode(document.c(5, 5), validate=True)
        root = ET.fromstring(facts.cda)
    except (binascii.Error, ValueError, ET.ParseError) as exc:
        return make_problem(
            "102", "OBX^1^5", f"OBX-5.5 is not base64 of an XML document ({type(exc).__name__})"
        )
    if root.tag != CDA_ROOT:
        return make_problem("102", "OBX^1^5", "OBX-5.5 does not hold a CDA ClinicalDocument")
    return None


def _participants(segments: list[Seg], document_at: int, facts: Facts) -> Problem | None:
    roles = []
    for seg in segments[document_at + 1 :]:
        if seg.name != "PRT":
            break
        role = seg.c(4, 1)
        roles.append(role)
        if role == "RCT":
            address = seg.f(15).split("^")[3] if len(seg.f(15).split("^")) > 3 else ""
            if not address:
                return make_problem(
                    "101", "PRT^1^15", "an RCT participant needs its MSSanté address in PRT-15.4"
                )
            facts.recipients.append(Recipient(seg.c(5, 1) or seg.f(10), address))
    if "SB" not in roles:
        return make_problem("101", "PRT^1^4", "the sender (PRT-4 SB) must follow the document OBX")
    return None


def _metadata(after_document: list[Seg], facts: Facts) -> Problem | None:
    order = []
    for seg in after_document:
        if seg.name == "OBX" and seg.c(3, 3) == "MetaDMPMSS":
            code, value = seg.c(3, 1), seg.c(5, 1)
            if seg.f(2) != "ED" and value not in ("Y", "N"):
                return make_problem("103", f"OBX^{seg.f(1)}^5", f"{code}: Y or N expected")
            facts.flags[code] = value
            order.append(code)
    required = [c for c in order if c in REQUIRED_METADATA]
    if required != list(REQUIRED_METADATA):
        return make_problem(
            "100", "OBX", "the eight MetaDMPMSS OBX must all be present, in the volet's order"
        )
    patient = [r for r in facts.recipients if r.is_patient]
    if facts.flags["DESTMSSANTEPS"] == "Y" and len(patient) == len(facts.recipients):
        return make_problem("207", "PRT", "DESTMSSANTEPS=Y without any professional RCT")
    if facts.flags["DESTMSSANTEPAT"] == "Y" and not patient:
        return make_problem("207", "PRT", "DESTMSSANTEPAT=Y without the patient's RCT")
    return None


def _matrix(facts: Facts) -> Problem | None:
    values = tuple(facts.flags[c] for c in REQUIRED_METADATA)
    if "Y" not in (facts.flags["DESTMSSANTEPS"], facts.flags["DESTMSSANTEPAT"]):
        return None
    if any(all(v in allowed for v, allowed in zip(values, row, strict=True)) for row in MATRIX):
        return None
    return make_problem("207", "OBX", "metadata combination outside the MSSanté matrix")
