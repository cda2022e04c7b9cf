"""Identifiers minted by the engine."""

from __future__ import annotations

import uuid

from ris.hl7v2.control_id import SHORT


def new_oid() -> str:
    """A globally unique root-only OID derived from a UUID (ITU-T X.667, arc 2.25), at most 44 chars.

    Root-only because the DMP does not support OID^extension document ids (cda-cr-ima.md §1.5)."""
    return f"2.25.{uuid.uuid4().int}"


def new_key() -> str:
    """An idempotency key for one delivery (MSH-10, Message-ID local part, XDS submission id)."""
    return uuid.uuid4().hex


REMINDER_DOMAIN = "reminder.ris-engine"


def delivery_key(channel: str) -> str:
    """The idempotency key of one delivery. The hl7 one is also the message's MSH-10, an ST of 20
    characters in v2.5 and v2.6 (80 random bits); a reminder's is its mail's Message-ID (without the
    angle brackets, RFC 5322 id-left@id-right); the others keep a whole UUID."""
    if channel == "hl7":
        return new_key()[:SHORT]
    if channel == "reminder":
        return f"{new_key()}@{REMINDER_DOMAIN}"
    return new_key()
