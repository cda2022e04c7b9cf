"""The delivery status machine, stated once: where a copy may go from each status, and the narrower part
of it a receipt (a peer's word about a copy it got) may take.

    planned -> blocked | waiting_announcement | pending
    blocked, waiting_announcement -> pending (the gate opened) or blocked (another reason)
    pending -> sent | acknowledged | failed | blocked (a gate closed at send time), or read (a receipt
        about a copy whose message left before the PFI's ACK of it was recorded)
    sent -> acknowledged | read | failed, or pending (the PFI's message sent again)
    acknowledged -> read
    failed -> pending (an administrator's retry) or blocked
    read: final

A receipt only moves a copy forward: sent -> acknowledged -> read, or sent -> failed. It never takes back
a delivered copy (acknowledged, read) and never touches one that was not sent (blocked,
waiting_announcement, pending) nor one that failed (only an administrator's retry reopens it). A
receipt that says less than the copy's status already says (a late positive delivery notice about a
copy already read) changes nothing but the timeline. Writing the same status again is a timeline note.
"""

from __future__ import annotations

from ris.store.models import DeliveryStatus

S = DeliveryStatus
BLOCKED, WAITING, PENDING, SENT = S.blocked, S.waiting_announcement, S.pending, S.sent
ACKNOWLEDGED, READ, FAILED = S.acknowledged, S.read, S.failed

NOT_SENT = frozenset({BLOCKED, WAITING, PENDING})
DELIVERED = frozenset({ACKNOWLEDGED, READ})

MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    BLOCKED: frozenset({PENDING}),
    WAITING: frozenset({PENDING, BLOCKED}),
    PENDING: frozenset({SENT, ACKNOWLEDGED, READ, FAILED, BLOCKED}),
    SENT: frozenset({ACKNOWLEDGED, READ, FAILED, PENDING}),
    ACKNOWLEDGED: frozenset({READ}),
    READ: frozenset(),
    FAILED: frozenset({PENDING, BLOCKED}),
}
RECEIPT_MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    SENT: frozenset({ACKNOWLEDGED, READ, FAILED}),
    ACKNOWLEDGED: frozenset({READ}),
}


def may_move(current: DeliveryStatus, target: DeliveryStatus) -> bool:
    """Whether any writer may move a copy from `current` to `target` (the same status: a timeline note)."""
    return target is current or target in MOVES[current]


def receipt_refusal(current: DeliveryStatus, target: DeliveryStatus | None) -> str | None:
    """Why a receipt leading to `target` (None: a note only) may not be applied to a copy in `current`;
    None when it may. The text names the rule and follows the copy's name ("delivery 12 is read: ...")."""
    if current in NOT_SENT:
        return f"is {current.value}: never sent, so no receipt can be about it"
    if current is FAILED:
        return "failed: a receipt cannot reopen it (an administrator's retry sends it again)"
    if target is FAILED and current in DELIVERED:
        return f"is {current.value}: a receipt never takes back a delivered copy"
    return None


def receipt_moves(current: DeliveryStatus, target: DeliveryStatus | None) -> bool:
    """True when an acceptable receipt moves the copy; False when it only adds to its timeline (a note,
    or a receipt behind the copy, e.g. a late delivery notice about a copy already read)."""
    return target is not None and target in RECEIPT_MOVES.get(current, frozenset())
