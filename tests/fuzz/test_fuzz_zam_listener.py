"""Fuzz of the ZAM receipt listener over a real socket: mutated ZAM Z01 receipts of a real delivery,
truncations and random bytes. Every input gets an answer (AA, AE or AR; never the "internal error" of a
handler that crashed), and a refused one leaves the deliveries, their timelines and the audit trail
exactly as they were."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from ris.channels.hl7.listener import ZamListener
from ris.hl7v2 import mllp
from ris.store import db
from ris.store.models import DeliveryStatus
from tests import factories
from tests.fuzz.conftest import (
    ThreadedListener,
    assert_answered_and_unchanged,
    digest,
    exchange_bytes,
    fuzz,
    last_inbound_id,
    text,
)
from tests.hl7.conftest import hl7_row, plan
from tests.reliability.test_forged_zam import z01

FUZZ = fuzz(100)
numbers = itertools.count(1)
Wire = Callable[[int, str], bytes]  # (message number, correlation key) -> bytes sent


@pytest.fixture(scope="module")
def listener(module_db: str) -> Iterator[tuple[str, int, str]]:
    with Session(db.get_engine(module_db), expire_on_commit=False) as session:
        rows = plan(session, factories.validated_report(session))
        for row in rows:
            row.status = DeliveryStatus.sent
            session.add(row)
        session.commit()
        key = hl7_row(rows).idempotency_key
    make = lambda: ZamListener(me=factories.SITE_PARTY, database_url=module_db)  # noqa: E731
    with ThreadedListener(make) as running:
        yield module_db, running.port, key


def mutate(message: str, segment: int, field: int, value: str) -> str:
    segments = message.split("\r")
    fields = segments[segment % len(segments)].split("|")
    index = max(field % len(fields), 2 if segment % len(segments) == 0 else 1)
    fields[index] = value
    segments[segment % len(segments)] = "|".join(fields)
    return "\r".join(segments)


@st.composite
def payloads(draw) -> Wire:
    kind = draw(st.sampled_from(["field", "truncate", "bytes"]))
    if kind == "field":
        segment, field, value = draw(st.integers(0, 2)), draw(st.integers(1, 25)), draw(text)
        return lambda n, key: mllp.frame(mutate(z01("PFI", f"ZF{n}", key), segment, field, value))
    if kind == "truncate":
        keep = draw(st.floats(0, 1))
        return lambda n, key: mllp.frame((m := z01("PFI", f"ZF{n}", key))[: int(len(m) * keep)])
    raw = draw(st.binary(max_size=300))
    return lambda n, key: mllp.START + raw + mllp.END


@FUZZ
@given(payloads())
def test_every_receipt_is_answered_and_a_refused_one_changes_nothing(
    listener: tuple[str, int, str], payload: Wire
) -> None:
    url, port, key = listener
    data = payload(next(numbers), key)
    before, last = digest(url), last_inbound_id(url)
    answers = exchange_bytes(port, data, expect=data.count(mllp.END) or 1)
    assert_answered_and_unchanged(url, answers, before, last)
