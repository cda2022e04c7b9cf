"""The audit of a message an inbound HL7 v2 listener refused (a sender or a peer outside its allowlist, a key
too long): who claimed to send what, from where, never the content."""

from __future__ import annotations

from ris.store import audit
from ris.store.db import session_scope


def record(
    url: str | None,
    listener: str,
    sender: str,
    control_id: str,
    why: str,
    *,
    peer: str | None = None,
    certificate: str | None = None,
) -> None:
    with session_scope(url) as session:
        audit.record(
            session,
            actor=f"hl7:{sender}"[:64],
            action="hl7.refused",
            object_type="listener",
            object_id=listener,
            control_id=control_id[:80],
            peer=peer,
            certificate=certificate,
            reason=why,
        )
