"""HL7 v2 ACK for the PAM feed (hl7v2-transport.md §7): MSA AA/AE/AR, ERR saying why."""

from __future__ import annotations

import datetime as dt
import uuid

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
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    h = header
    event = h.event if h else ""
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            h.receiving_application if h else "RIS",
            h.receiving_facility if h else "",
            h.sending_application if h else "",
            h.sending_facility if h else "",
            now,
            "",
            f"ACK^{event}^ACK",
            uuid.uuid4().hex[:20],
            "P",
            h.version if h and h.version else "2.5",
        ]
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
