"""Identifiers minted by the engine."""

from __future__ import annotations

import uuid


def new_oid() -> str:
    """A globally unique root-only OID derived from a UUID (ITU-T X.667, arc 2.25), at most 44 chars.

    Root-only because the DMP does not support OID^extension document ids (cda-cr-ima.md §1.5)."""
    return f"2.25.{uuid.uuid4().int}"


def new_key() -> str:
    """An idempotency key for one delivery (MSH-10, Message-ID local part, XDS submission id)."""
    return uuid.uuid4().hex
