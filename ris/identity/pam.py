"""Inbound HL7 v2.5 messages carrying a PID (ins.md §8, RIS.INS.55-57): every PAM-FR 2.11 ADT event and
the order / scheduling messages a RIS receives, parsed with hl7apy into plain identity values.

Only the PID (and MRG for a merge or an identifier change) is read: the movement of an ADT, the order of an
ORM / OMI and the appointment of an SIU belong to other parts of the RIS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from ris.identity.birth_date import implausibility
from ris.identity.nir import INS_OIDS
from ris.text_rules import line_problem

# PAM-FR 2.11 (ITI-30 / ITI-31, French national extension) events, plus A08 that older feeds still send.
ADT_EVENTS = frozenset(
    {
        f"A{n:02d}"
        for n in (*range(1, 17), 21, 22, 25, 26, 27, 28, 31, 32, 33, 38, 40, 44, 47, 49, 52, 53, 54, 55)
    }
    # Z80-Z89: the national extension's changes of medical / nursing responsibility and their
    # cancellations; Z99: update of movement information.
    | {f"Z{n}" for n in range(80, 90)}
    | {"Z99"}
)
# MSH-9.1 -> the trigger events taken in. ORM / OMI / SIU carry a PID per the CI-SIS INS annex (RIS.INS.57).
SUPPORTED = {
    "ADT": ADT_EVENTS,
    "ORM": frozenset({"O01"}),
    "OMI": frozenset({"O23"}),
    "SIU": frozenset({"S12", "S13", "S14", "S15", "S16", "S17", "S26"}),
}
# PAM-FR is HL7 2.5 (MSH-12 `2.5^FRA^2.11`); IHE Radiology order messages are often 2.5.1.
VERSIONS = ("2.5", "2.5.1")
# Message types whose PID is optional (SIU, ORM, OMI): without one there is no identity to take in.
PID_OPTIONAL = frozenset({"ORM", "OMI", "SIU"})
# PID-32 (table 0445) codes that carry an identity attribute (rule 25).
ATTRIBUTE_CODES = {
    "FICT": "fictive",
    "DOUT": "douteuse",
    "DOUB": "douteuse",
    "DOUA": "douteuse",
    "HOMD": "homonyme",
    "HOMA": "homonyme",
}


# The identity's texts end in mail subjects, documents and HL7 fields: one line each (ris.text_rules).
PID_TEXT = {
    "ipp": "PID-3.1",
    "ipp_authority": "PID-3.4",
    "ins_matricule": "PID-3.1",
    "birth_name": "PID-5.1",
    "first_birth_given_name": "PID-5.2",
    "birth_given_names": "PID-5.3",
    "used_name": "PID-5.1",
    "used_given_name": "PID-5.2",
    "sex": "PID-8",
    "birth_place_code": "PID-11.9",
}


class PamError(ValueError):
    """A message the feed must refuse: HL7 table 0357 code, where, and why (ERR segment)."""

    def __init__(self, code: str, location: str, text: str, *, reject: bool = False) -> None:
        self.code, self.location, self.text, self.reject = code, location, text, reject
        super().__init__(f"{location}: {text}")


@dataclass(frozen=True)
class Header:
    sender: str  # MSH-3^MSH-4
    control_id: str
    message_type: str  # ADT^A28
    event: str
    version: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str


@dataclass
class PamIdentity:
    ipp: str
    ipp_authority: str
    ins_matricule: str | None = None
    ins_oid: str | None = None
    birth_name: str | None = None
    first_birth_given_name: str | None = None
    birth_given_names: str | None = None
    used_name: str | None = None
    used_given_name: str | None = None
    birth_date: dt.date | None = None
    sex: str | None = None
    birth_place_code: str | None = None
    reliability: list[str] = field(default_factory=list)  # PID-32 codes

    @property
    def attributes(self) -> list[str]:
        return sorted({ATTRIBUTE_CODES[c] for c in self.reliability if c in ATTRIBUTE_CODES})


@dataclass
class PamMessage:
    header: Header
    identity: PamIdentity | None  # None: an order or an appointment without a patient segment
    prior_ipp: str | None = None  # MRG-1 (A40 merge, A47 identifier change)


def read_header(er7: str) -> Header:
    """MSH only, by hand: enough to store and acknowledge even a message hl7apy cannot parse."""
    first = er7.lstrip("\r\n").split("\r", 1)[0].split("\n", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        raise PamError("100", "MSH", "the message does not start with an MSH segment", reject=True)
    sep = first[3]
    f = first.split(sep)
    comp = f[1][0] if f[1] else "^"

    def at(n: int) -> str:  # MSH-n (MSH-1 is the separator itself)
        return f[n - 1] if len(f) >= n else ""

    msh9 = at(9).split(comp)
    if not at(10):
        raise PamError("101", "MSH-10", "message control id is missing", reject=True)
    return Header(
        sender=f"{at(3)}^{at(4)}",
        control_id=at(10),
        message_type="^".join(msh9[:2]),
        event=msh9[1] if len(msh9) > 1 else "",
        version=at(12).split(comp)[0],
        sending_application=at(3),
        sending_facility=at(4),
        receiving_application=at(5),
        receiving_facility=at(6),
    )


def _hl7_date(value: str, location: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError as exc:
        raise PamError("102", location, f"{value!r} is not a date AAAAMMJJ") from exc


def check_type(header: Header) -> None:
    """AR for what the intake cannot read: an unknown message type or event, a version other than 2.5."""
    code = header.message_type.split("^")[0]
    if code not in SUPPORTED:
        raise PamError("200", "MSH-9", f"unsupported message type {code!r} (ADT, ORM, OMI, SIU)", reject=True)
    if header.event not in SUPPORTED[code]:
        raise PamError("201", "MSH-9", f"unsupported event {header.message_type}", reject=True)
    if header.version not in VERSIONS:
        raise PamError(
            "203", "MSH-12", f"unsupported version {header.version!r} (2.5 PAM-FR, 2.5.1)", reject=True
        )


def parse(er7: str) -> PamMessage:
    header = read_header(er7)
    check_type(header)
    try:
        msg = parse_message(
            er7.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False
        )
    except Exception as exc:  # hl7apy raises many unrelated types on malformed input
        raise PamError(
            "102", "message", f"not parseable as HL7 v{header.version}: {type(exc).__name__}", reject=True
        ) from exc
    # find_groups=False: every segment is a child of the message, whatever group the structure puts it in.
    pids = [s for s in msg.children if s.name == "PID"]
    if not pids:
        if header.message_type.split("^")[0] in PID_OPTIONAL:
            return PamMessage(header, None)
        raise PamError("100", "PID", "the PID segment is missing")
    identity = _identity(pids[0])
    prior = None
    mrgs = [s for s in msg.children if s.name == "MRG"]
    if header.event in ("A40", "A47"):
        if not mrgs or not mrgs[0].mrg_1.to_er7():
            raise PamError("101", "MRG-1", f"{header.event} needs the prior patient identifier")
        prior = mrgs[0].mrg_1[0].cx_1.to_er7()
    return PamMessage(header, identity, prior)


def _identity(pid) -> PamIdentity:
    ipp = authority = None
    ins = oid = None
    for cx in pid.pid_3:
        kind = cx.cx_5.to_er7()
        if kind == "PI" and ipp is None:
            ipp, authority = cx.cx_1.to_er7(), cx.cx_4.to_er7()
        elif kind == "INS":
            oid = cx.cx_4.hd_2.to_er7()
            if oid not in INS_OIDS:
                raise PamError("103", "PID-3.4", f"INS assigning authority {oid!r} is not an INS OID")
            ins = cx.cx_1.to_er7()
    if not ipp:
        raise PamError("101", "PID-3", "no patient identifier of type PI (IPP)")
    ident = PamIdentity(ipp=ipp, ipp_authority=authority or "", ins_matricule=ins, ins_oid=oid)
    for xpn in pid.pid_5:
        kind = xpn.xpn_7.to_er7()
        if kind == "L":
            ident.birth_name = xpn.xpn_1.to_er7() or None
            ident.first_birth_given_name = xpn.xpn_2.to_er7() or None
            ident.birth_given_names = xpn.xpn_3.to_er7().replace("\\S\\", "^") or None
        elif kind == "D":
            ident.used_name = xpn.xpn_1.to_er7() or None
            ident.used_given_name = xpn.xpn_2.to_er7() or None
    ident.birth_date = _hl7_date(pid.pid_7.to_er7(), "PID-7")
    if ident.birth_date is not None and (why := implausibility(ident.birth_date)) is not None:
        raise PamError("102", "PID-7", f"birth date {why}")
    ident.sex = pid.pid_8.to_er7() or None
    for xad in pid.pid_11:
        if xad.xad_7.to_er7() == "BDL":
            ident.birth_place_code = xad.xad_9.to_er7() or None
    ident.reliability = [r.to_er7() for r in pid.pid_32 if r.to_er7()]
    for name, location in PID_TEXT.items():
        if (value := getattr(ident, name)) and (problem := line_problem(value)):
            raise PamError("102", location, problem)
    return ident
