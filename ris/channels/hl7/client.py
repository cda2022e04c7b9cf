"""Sending one message to the PFI over MLLP and classifying its answer (hl7v2-transport.md §7, §9).

AA: delivered. AE, no answer in time, refused connection or broken framing: transient, worth a retry with
the same MSH-10. AR: permanent, never retried automatically.
"""

from __future__ import annotations

from dataclasses import dataclass

from ris.hl7v2 import mllp
from ris.hl7v2.ack_reader import Ack, AckFormatError, parse_ack


class Hl7DeliveryError(Exception):
    """A send that did not end with AA. `reason` holds codes and locations only, never health data."""

    def __init__(self, reason: str, ack: Ack | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ack = ack


class Hl7Transient(Hl7DeliveryError):
    """AE, timeout, refused or cut connection: the same message may be sent again."""


class Hl7Rejected(Hl7DeliveryError):
    """AR: the PFI refuses the message; sending it again would change nothing."""


@dataclass(frozen=True)
class PfiClient:
    host: str
    port: int
    timeout_s: float = 30.0

    async def send(self, message: str, control_id: str) -> Ack:
        """One message on a fresh connection; returns the AA, raises Hl7Transient / Hl7Rejected."""
        where = f"PFI {self.host}:{self.port}"
        try:
            answer = await mllp.exchange(self.host, self.port, message, timeout=self.timeout_s)
        except mllp.MllpTimeout as exc:
            raise Hl7Transient(f"{where}: no ACK within {self.timeout_s:g} s") from exc
        except (OSError, mllp.MllpError) as exc:
            raise Hl7Transient(f"{where}: {type(exc).__name__}: {exc}") from exc
        try:
            ack = parse_ack(answer)
        except AckFormatError as exc:
            raise Hl7Transient(f"{where}: unreadable answer ({exc})") from exc
        if ack.control_id != control_id:
            raise Hl7Transient(f"{where}: ACK for another message (MSA-2 {ack.control_id!r})", ack)
        if ack.accepted:
            return ack
        if ack.rejected:
            raise Hl7Rejected(f"{where}: {ack.reason()}", ack)
        raise Hl7Transient(f"{where}: {ack.reason()}", ack)
