"""Writing our ACK to a received message (hl7v2-transport.md §7): to the PAM-FR feed and to the PFI's ZAM.

MSH mirrored (MSH-9 the acknowledgement the received type expects, MSH-12 the received version), MSA-2 =
the received MSH-10, and when the message is not accepted one ERR: ERR-2 where, ERR-3 table 0357, ERR-4
`E`, ERR-8 why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ris.hl7v2.control_id import new_control_id
from ris.hl7v2.er7 import Segment, escape
from ris.hl7v2.msh import build_msh

# Table 0357 labels of the conditions our ACKs report.
CONDITIONS = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "207": "Application internal error",
}

# HL7 v2.5 ch. 4: an order is answered by its own application acknowledgement; every other message
# (ADT, SIU, ZAM...) by the general `ACK^<trigger>^ACK`.
ORDER_ACKS = {("ORM", "O01"): "ORR^O02^ORR_O02", ("OMI", "O23"): "ORI^O24^ORI_O24"}


def ack_message_type(message_code: str, trigger: str) -> str:
    """MSH-9 of the acknowledgement of a message whose MSH-9 is `message_code^trigger`."""
    return ORDER_ACKS.get((message_code, trigger), f"ACK^{trigger}^ACK")


@dataclass(frozen=True)
class Party:
    """An application and its facility as configured (plain text, escaped when written)."""

    application: str
    facility: str


@dataclass(frozen=True)
class Received:
    """What an ACK echoes of the message it answers: MSH values as they came (ER7, never escaped again)."""

    sending_application: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    message_code: str = ""  # MSH-9.1
    trigger: str = ""  # MSH-9.2
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11

    @classmethod
    def read(cls, msh: Segment) -> Received:
        return cls(
            sending_application=msh.field(3),
            sending_facility=msh.field(4),
            receiving_application=msh.field(5),
            receiving_facility=msh.field(6),
            message_code=msh.component(9, 1),
            trigger=msh.component(9, 2),
            control_id=msh.field(10),
            processing_id=msh.field(11),
        )


@dataclass(frozen=True)
class Problem:
    """Why a message is not accepted: its table 0357 condition, the text for ERR-8 and, when known, where
    (`PID-3.4`, `MSH-10`, or a segment id)."""

    condition: str
    text: str
    location: str = ""


def error_location(location: str) -> str:
    """ "PID-3.4" -> ERL "PID^1^3^1^4"; anything else is passed as the segment id."""
    seg, _, rest = location.partition("-")
    if not rest:
        return escape(seg)
    fld, _, comp = rest.partition(".")
    return f"{seg}^1^{fld}" + (f"^1^{comp}" if comp else "")


def build_ack(
    code: str,
    received: Received,
    *,
    version: str,
    now: dt.datetime,
    tz: str,
    sender: Party | None = None,
    problem: Problem | None = None,
) -> str:
    """`code` is AA, AE or AR. MSH-3 / MSH-4 name `sender`, or mirror the received MSH-5 / MSH-6 without
    it; `version` (MSH-12) is the received one, each caller choosing the default for a message without."""
    msh = build_msh(
        sending_application=escape(sender.application) if sender else received.receiving_application,
        sending_facility=escape(sender.facility) if sender else received.receiving_facility,
        receiving_application=received.sending_application,
        receiving_facility=received.sending_facility,
        when=now,
        tz=tz,
        message_type=ack_message_type(received.message_code, received.trigger),
        control_id=new_control_id(version),
        processing_id=received.processing_id or "P",
        version=version,
    )
    lines = [msh, f"MSA|{code}|{received.control_id}"]
    if problem:
        label = escape(CONDITIONS.get(problem.condition, "Error"))
        lines.append(
            f"ERR||{error_location(problem.location)}|{problem.condition}^{label}^HL70357|E||||"
            f"{escape(problem.text)}"
        )
    return "\r".join(lines) + "\r"
