"""Rules every inbound HL7 v2 listener applies before it stores a message: the key it is filed under, and
who may send on this listener (a refusal is audited by the store: `ris.store.listener_refusals`).

A message is filed under its whole sender (MSH-3^MSH-4) and MSH-10: a key too long for the store is
refused with AR, never cut (two messages sharing a prefix would otherwise be taken for one). A sender
or a peer address outside the listener's allowlist is refused with AR and audited (a forged ZAM or a
stray feed must not change anything).
"""

from __future__ import annotations

from dataclasses import dataclass

from ris.hl7v2.ack_writer import Problem
from ris.hl7v2.mllp import Peer

MAX_SENDER = 128  # InboundMessage.sender
MAX_CONTROL_ID = 64  # InboundMessage.control_id


def key_problem(sender: str, control_id: str) -> Problem | None:
    if len(control_id) > MAX_CONTROL_ID:
        return Problem("102", f"MSH-10 longer than {MAX_CONTROL_ID} characters", "MSH-10")
    if len(sender) > MAX_SENDER:
        return Problem("102", f"MSH-3^MSH-4 longer than {MAX_SENDER} characters", "MSH-3")
    return None


@dataclass(frozen=True)
class Allowlist:
    """Who may send on one listener, on each criterion it lists (an empty one is not checked). The engine's
    listeners get theirs from the site's settings, which fill every criterion they leave empty from the
    configured peer (`ris.site.listeners`)."""

    senders: frozenset[str] = frozenset()  # MSH-3, or MSH-3^MSH-4
    peers: tuple[str, ...] = ()  # addresses or networks (CIDR) of the peers
    certificate_cns: frozenset[str] = frozenset()  # subject CN of the TLS client certificates

    def refusal(self, application: str, sender: str, peer: Peer | None) -> Problem | None:
        if self.senders and application not in self.senders and sender not in self.senders:
            return Problem("207", f"sender {sender} is not allowed on this listener", "MSH-3")
        if self.peers and (peer is None or not peer.is_in(self.peers)):
            return Problem("207", "peer address is not allowed on this listener", "MSH")
        if self.certificate_cns and (peer is None or peer.certificate_cn not in self.certificate_cns):
            return Problem("207", "client certificate is not allowed on this listener", "MSH")
        return None


def peer_trace(peer: Peer | None) -> dict[str, str | None]:
    """What the audit trail keeps of the peer of a refused message: its address and certificate CN."""
    return {"peer": peer.address if peer else None, "certificate": peer.certificate_cn if peer else None}
