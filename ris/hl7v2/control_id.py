"""MSH-10, the message control id: unique per message we write, echoed in MSA-2 by the answer."""

from __future__ import annotations

import re
import uuid

SHORT = 20  # MSH-10 is an ST of 20 characters up to v2.6...
LONG = 199  # ...and of 199 from v2.7 on
_VERSION = re.compile(r"(\d+)\.(\d+)")


def max_length(version: str) -> int:
    """The MSH-10 length allowed by an MSH-12 value ("2.5", "2.6", PAM-FR's "2.5^FRA^2.11"). A version
    we cannot read (an ACK to garbage) gets the short length, which fits every version."""
    match = _VERSION.match(version)
    return LONG if match and (int(match[1]), int(match[2])) >= (2, 7) else SHORT


def new_control_id(version: str) -> str:
    """A fresh MSH-10 that fits `version`: the leading hex digits of a random UUID (80 bits in 20)."""
    return uuid.uuid4().hex[: max_length(version)]
