"""hl7apy STRICT validation of a built message, payload and PRT aside (library-notes.md §1).

At STRICT, OBX-5 components are ST limited to 199 characters, so the validated copy carries a placeholder
instead of the base64 data; PRT (pre-adopted from v2.9) is not in the 2.5 / 2.6 structures.
"""

from __future__ import annotations

import re

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

ED_DATA = re.compile(r"(OBX\|[^|]*\|ED\|[^|]*\|[^|]*\|\^[^^|]*\^[^^|]*\^[^^|]*\^)[^|\r]*")


class Hl7ValidationError(ValueError):
    pass


def strict_copy(er7: str) -> str:
    short = ED_DATA.sub(r"\1PLACEHOLDER", er7)
    return "\r".join(line for line in short.split("\r") if not line.startswith("PRT|"))


def strict_validate(er7: str) -> None:
    """Raise Hl7ValidationError with hl7apy's reason when the message breaks its version's structure."""
    try:
        message = parse_message(strict_copy(er7), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message.validate()
    except Exception as exc:  # hl7apy raises a family of unrelated exception types
        raise Hl7ValidationError(f"hl7apy STRICT validation: {type(exc).__name__}: {exc}") from exc
