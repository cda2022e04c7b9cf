"""Reading a technical acknowledgement (hl7v2-transport.md §7): MSA, and the ERR segments saying why.

Reasons built from an ACK hold codes, code labels and locations only: the PFI's free text (ERR-8) could
quote the message, so it never reaches logs or exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ris.hl7v2.er7 import Segment, segments


class AckFormatError(ValueError):
    """The answer is not an HL7 acknowledgement we can read."""


@dataclass(frozen=True)
class AckError:
    location: str  # ERR-2, e.g. OBX^1^5
    condition: str  # ERR-3.1, table 0357
    condition_label: str
    severity: str  # ERR-4: E / W / I
    application: str  # ERR-5.1 (application error code, e.g. DMPClosed, 550)
    application_label: str

    def describe(self) -> str:
        parts = [f"ERR-3 {self.condition} {self.condition_label}".strip()]
        if self.application:
            parts.append(f"ERR-5 {self.application} {self.application_label}".strip())
        if self.location:
            parts.append(f"at {self.location}")
        return " ".join(parts)


@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1: AA / AE / AR (or CA / CE / CR in enhanced mode)
    control_id: str  # MSA-2: MSH-10 of the acknowledged message
    errors: tuple[AckError, ...]

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")

    @property
    def rejected(self) -> bool:
        return self.code in ("AR", "CR")

    def reason(self) -> str:
        details = "; ".join(e.describe() for e in self.errors) or "no ERR segment"
        return f"MSA {self.code}: {details}"


def read_errors(items: list[Segment]) -> tuple[AckError, ...]:
    return tuple(
        AckError(
            location="^".join(p for p in err.field(2).split("^") if p),
            condition=err.component(3, 1),
            condition_label=err.component(3, 2),
            severity=err.field(4),
            application=err.component(5, 1),
            application_label=err.component(5, 2),
        )
        for err in items
        if err.name == "ERR"
    )


def parse_ack(text: str) -> Ack:
    items = segments(text)
    if not items or items[0].name != "MSH":
        raise AckFormatError("the answer does not start with an MSH segment")
    msa = next((s for s in items if s.name == "MSA"), None)
    if msa is None or not msa.field(1):
        raise AckFormatError("the answer has no MSA segment with MSA-1")
    return Ack(code=msa.field(1), control_id=msa.field(2), errors=read_errors(items))
