"""How a resend message to the PFI is named: the action it repeats with `-r<n>` after it (`initial-r1`,
the first resend of the initial message). An administrator's retry sends one for the relayed copies whose
receipt failed (`ris.operations.retry_relay`); the receipts and the publication read the name back to
find the copies it speaks for, those of the action it repeats."""

from __future__ import annotations

from ris.store.models import Channel, Delivery

RESEND = "-r"


def base_action(action: str) -> str:
    """The action a resend message repeats (`initial-r2` -> `initial`); other actions are their own."""
    return action.split(RESEND, 1)[0]


def is_resend(row: Delivery) -> bool:
    return row.channel is Channel.hl7 and RESEND in row.action


def resend_action(action: str, number: int) -> str:
    """The action of the `number`th resend of the `action` message."""
    return f"{action}{RESEND}{number}"
