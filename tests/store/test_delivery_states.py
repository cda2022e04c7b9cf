"""The delivery status machine: every status has its moves, and a receipt only moves a sent copy forward."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ris.store import delivery_states as states
from ris.store.models import DeliveryStatus

STATUSES = st.sampled_from(list(DeliveryStatus))
ORDER = [DeliveryStatus.sent, DeliveryStatus.acknowledged, DeliveryStatus.read]


def test_every_status_is_in_the_machine_and_read_is_final() -> None:
    assert set(states.MOVES) == set(DeliveryStatus)
    assert states.MOVES[DeliveryStatus.read] == frozenset()
    assert all(
        target in states.MOVES[current] for current, ts in states.RECEIPT_MOVES.items() for target in ts
    )


@given(STATUSES, st.one_of(st.none(), STATUSES))
def test_a_receipt_moves_only_a_sent_copy_and_only_forward(
    current: DeliveryStatus, target: DeliveryStatus | None
) -> None:
    refused = states.receipt_refusal(current, target)
    if current in states.NOT_SENT or current is DeliveryStatus.failed:
        assert refused is not None
    if refused is None and states.receipt_moves(current, target):
        assert current in (DeliveryStatus.sent, DeliveryStatus.acknowledged)
        assert (target is DeliveryStatus.failed and current is DeliveryStatus.sent) or (
            target in ORDER and ORDER.index(target) > ORDER.index(current)
        )
        assert states.may_move(current, target)


@given(st.sampled_from(sorted(states.DELIVERED)))
def test_a_negative_receipt_never_takes_back_a_delivered_copy(current: DeliveryStatus) -> None:
    assert "never takes back a delivered copy" in states.receipt_refusal(current, DeliveryStatus.failed)
    assert states.receipt_refusal(current, DeliveryStatus.acknowledged) is None  # late, no change
    assert not states.receipt_moves(current, DeliveryStatus.acknowledged)
