"""The MSH segment of every message we write: ORU / MDM, PAM-FR A31 / A47 and our ACKs."""

from __future__ import annotations

import datetime as dt

from ris.hl7v2.datatypes import dtm

COUNTRY = "FRA"  # MSH-17
CHARSET = "UNICODE UTF-8"  # MSH-18: MLLP writes every message as UTF-8 (mllp.frame)


def build_msh(
    *,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    when: dt.datetime,
    tz: str,
    message_type: str,
    control_id: str,
    processing_id: str,
    version: str,
    language: str = "",
    profile: str = "",
) -> str:
    """One MSH line. Values go on the wire as given: escape free text first (er7.escape), and pass values
    echoed from a received MSH as they came. Empty trailing fields are left out, as hl7apy writes them."""
    fields = [
        "MSH",
        "^~\\&",
        sending_application,
        sending_facility,
        receiving_application,
        receiving_facility,
        dtm(when, tz),
        "",  # MSH-8 security
        message_type,
        control_id,
        processing_id,
        version,
        "",  # MSH-13 sequence number
        "",  # MSH-14 continuation pointer
        "",  # MSH-15 accept acknowledgement type
        "",  # MSH-16 application acknowledgement type
        COUNTRY,
        CHARSET,
        language,  # MSH-19
        "",  # MSH-20 alternate character set handling
        profile,  # MSH-21
    ]
    return "|".join(fields).rstrip("|")
