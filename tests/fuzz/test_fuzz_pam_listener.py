"""Fuzz of the PAM-FR listener over a real socket: mutated PAM-FR messages, lies about the charset, random
bytes and broken framing. Every input gets an answer (AA, AE or AR; never the "internal error" of a
handler that crashed), and a refused one leaves the stored identities, their history and the audit trail
exactly as they were."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from tests.fuzz.conftest import (
    ThreadedListener,
    assert_answered_and_unchanged,
    digest,
    exchange_bytes,
    fuzz,
    last_inbound_id,
    text,
)
from tests.reliability.pam_messages import pam

FUZZ = fuzz(100)
numbers = itertools.count(1)


@pytest.fixture(scope="module")
def listener(module_db: str) -> Iterator[tuple[str, int]]:
    intake = PamIntake(IntakePolicy(frozenset({"GAM"})), database_url=module_db)
    with ThreadedListener(intake.listener) as running:
        yield module_db, running.port


def mutate(message: str, segment: int, field: int, value: str) -> str:
    segments = message.split("\r")
    fields = segments[segment % 4].split("|")
    index = field % len(fields)
    if segment % 4 == 0 and index < 2:
        index = 2  # MSH-1 / MSH-2 (the separators) are mutated by the truncation case
    fields[index] = value
    segments[segment % 4] = "|".join(fields)
    return "\r".join(segments)


Wire = Callable[[int], tuple[bytes, bool]]  # message number -> (bytes sent, sender closes its side)


@st.composite
def payloads(draw) -> Wire:
    """A recipe for the bytes of one attempt; the number (IPP, MSH-10) is given when it is sent, so that
    every attempt is a new message and the drawing never depends on it."""
    kind = draw(st.sampled_from(["field", "truncate", "charset", "bytes", "framing"]))
    if kind == "field":
        segment, field, value = draw(st.integers(0, 3)), draw(st.integers(1, 40)), draw(text)
        return lambda n: (mllp.frame(mutate(pam(n, cid=f"FZ{n}"), segment, field, value)), False)
    if kind == "truncate":
        keep = draw(st.floats(0, 1))
        return lambda n: (mllp.frame((m := pam(n, cid=f"FZ{n}"))[: int(len(m) * keep)]), False)
    if kind == "charset":
        street = draw(st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1, max_size=8))
        declared = draw(st.sampled_from(["UNICODE UTF-8", "8859/1", "", "ASCII", "8859/15"]))
        codec = draw(st.sampled_from(["utf-8", "latin-1"]))
        encoded = lambda n: pam(n, cid=f"FZ{n}", street=street, charset=declared).encode(codec)  # noqa: E731
        return lambda n: (mllp.START + encoded(n) + mllp.END, False)
    if kind == "bytes":
        raw = draw(st.binary(max_size=300))
        return lambda n: (mllp.START + raw + mllp.END, False)
    garbage = draw(st.binary(min_size=1, max_size=20).filter(lambda b: b.strip(b" \r\n\t\x0b")))
    where = draw(st.sampled_from(["before", "unterminated", "two-frames"]))
    if where == "before":
        return lambda n: (garbage + mllp.frame(pam(n, cid=f"FZ{n}")), False)
    if where == "unterminated":
        return lambda n: (mllp.START + pam(n, cid=f"FZ{n}").encode(), True)
    return lambda n: (mllp.frame(pam(n, cid=f"FZ{n}")) + mllp.frame(pam(n, cid=f"FZ{n}b")), False)


@FUZZ
@given(payloads())
def test_every_input_is_answered_and_a_refused_one_changes_nothing(
    listener: tuple[str, int], payload: Wire
) -> None:
    url, port = listener
    data, close_write = payload(next(numbers))
    before, last = digest(url), last_inbound_id(url)
    answers = exchange_bytes(port, data, expect=data.count(mllp.END) or 1, close_write=close_write)
    assert_answered_and_unchanged(url, answers, before, last)
