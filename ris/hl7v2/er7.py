"""ER7 (pipe-and-hat) text: escaping free text and reading received messages field by field.

Received ACK and ZAM messages are read with these small helpers rather than with hl7apy, which does not
know the ZAM_Z01 structure and drops segments it does not model.
"""

from __future__ import annotations

import re

_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
_UNESCAPES = {escaped[1]: raw for raw, escaped in _ESCAPES}
_SEQUENCE = re.compile(r"\\([EFSTR])\\")


def escape(text: str) -> str:
    """Free text made safe for a field or component (HL7 v2 §2.7 escape sequences); line breaks become
    spaces because a CR would end the segment."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return " ".join(text.splitlines())


def unescape(text: str) -> str:
    """One left-to-right pass, so that an escaped backslash never starts a new sequence."""
    return _SEQUENCE.sub(lambda m: _UNESCAPES[m.group(1)], text)


class Segment:
    """One received segment; `field(n)` and `component(n, c)` use the standard 1-based HL7 numbering."""

    def __init__(self, line: str) -> None:
        self.parts = line.split("|")
        self.name = self.parts[0]

    def field(self, n: int) -> str:
        # MSH-1 is the field separator itself, so MSH fields sit one place to the left.
        index = n - 1 if self.name == "MSH" else n
        return self.parts[index] if 0 <= index < len(self.parts) else ""

    def component(self, n: int, c: int) -> str:
        first_repetition = self.field(n).split("~")[0]
        components = first_repetition.split("^")
        return unescape(components[c - 1]) if c <= len(components) else ""


def segments(message: str) -> list[Segment]:
    lines = message.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return [Segment(line) for line in lines if line.strip()]
