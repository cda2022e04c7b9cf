"""HL7 v2 ACK for the PAM feed (hl7v2-transport.md §7): MSA AA/AE/AR, ERR saying why."""

from __future__ import annotations

import datetime as dt

from ris.hl7v2.control_id import new_control_id
from ris.hl7v2.msh import build_msh
from ris.identity.pam import Header


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def error_location(location: str) -> str:
    """ "PID-3.4" -> ERL "PID^1^3^1^4"; anything else is passed as the segment id."""
    seg, _, rest = location.partition("-")
    if not rest:
        return _escape(seg)
    fld, _, comp = rest.partition(".")
    return f"{seg}^1^{fld}" + (f"^1^{comp}" if comp else "")


def build_ack(
    header: Header | None,
    code: str,
    *,
    error: tuple[str, str, str] | None = None,
    control_id: str | None = None,
) -> str:
    """`code` is AA, AE or AR; `error` is (table 0357 code, location, text)."""
    h = header
    version = h.version if h and h.version else "2.5"
    msh = build_msh(
        sending_application=h.receiving_application if h else "RIS",
        sending_facility=h.receiving_facility if h else "",
        receiving_application=h.sending_application if h else "",
        receiving_facility=h.sending_facility if h else "",
        when=dt.datetime.now(dt.UTC),
        tz="UTC",
        message_type=f"ACK^{h.event if h else ''}^ACK",
        control_id=new_control_id(version),
        processing_id="P",
        version=version,
    )
    segments = [msh, f"MSA|{code}|{_escape(control_id or (h.control_id if h else ''))}"]
    if error:
        cond, location, text = error
        label = {
            "100": "Segment sequence error",
            "101": "Required field missing",
            "102": "Data type error",
            "103": "Table value not found",
            "200": "Unsupported message type",
            "201": "Unsupported event code",
            "203": "Unsupported version",
            "207": "Application internal error",
        }.get(cond, "Error")
        severity = "E"
        segments.append(
            f"ERR||{error_location(location)}|{cond}^{label}^HL70357|{severity}||||{_escape(text)}"
        )
    return "\r".join(segments) + "\r"
