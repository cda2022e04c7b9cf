"""Shared pieces of the fuzz suites: one database and one listener per module (hypothesis runs many
examples against them), the stored state as a digest, and a blocking MLLP client over a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ris.hl7v2 import mllp
from ris.store import db

# The tables a refused input must leave as they were (the inbound message log keeps refusals on purpose).
BUSINESS = (
    "patient",
    "identitystatuschange",
    "patientrefusal",
    "worklistitem",
    "outboundmessage",
    "insiexchange",
    "correspondent",
    "exam",
    "report",
    "reportrecipient",
    "delivery",
    "deliveryevent",
    "auditentry",
)


@pytest.fixture(scope="module")
def module_db(migrated_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("fuzz") / "ris.db"
    shutil.copy(migrated_template, path)
    url = f"sqlite:///{path}"
    yield url
    db.get_engine(url).dispose()


def digest(url: str, tables: tuple[str, ...] = BUSINESS) -> str:
    """One hash of every row of `tables`: equal digests, unchanged stored state."""
    h = hashlib.sha256()
    with db.get_engine(url).connect() as connection:
        for table in tables:
            for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def inbound_outcomes_since(url: str, last_id: int) -> list[str]:
    with db.get_engine(url).connect() as connection:
        rows = connection.execute(sa.text("SELECT outcome FROM inboundmessage WHERE id > :i"), {"i": last_id})
        return [r[0] for r in rows]


def last_inbound_id(url: str) -> int:
    with db.get_engine(url).connect() as connection:
        return connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM inboundmessage").scalar_one()


class ThreadedListener:
    """An asyncio MLLP listener served from its own thread, so that sync hypothesis tests can talk to it."""

    def __init__(self, make: Callable[[], AbstractAsyncContextManager]) -> None:
        self.make = make
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.make() as server:
            self.port = server.port
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedListener:
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._serve(),), daemon=True
        )
        self._thread.start()
        assert self._ready.wait(30), "the listener did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.loop.close()


def exchange_bytes(
    port: int, data: bytes, *, expect: int = 1, close_write: bool = False, timeout: float = 20
) -> list[bytes]:
    """Send raw bytes, then read answer frames until `expect` came or the listener closes."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buffer += chunk
            while mllp.END in buffer:
                frame, buffer = buffer.split(mllp.END, 1)
                answers.append(frame.lstrip(mllp.START))
            if len(answers) >= expect:
                break
    return answers


def msa_code(answer: bytes) -> str:
    segments = answer.decode("utf-8", "replace").split("\r")
    msa = next((s for s in segments if s.startswith("MSA|")), "")
    return msa.split("|")[1] if msa else ""


def fuzz(max_examples: int) -> settings:
    """The suites' hypothesis settings: deterministic (the same cases on every run and in CI), no
    per-example deadline (real sockets and a real database)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )


# Any text a field may be given, surrogates excepted (they cannot be encoded).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def assert_answered_and_unchanged(url: str, answers: list[bytes], before: str, last_inbound: int) -> None:
    """Every input gets an answer (AA, AE or AR; never the "internal error" of a handler that crashed),
    and one not accepted leaves the stored state as it was, its message stored as rejected at most."""
    assert answers, "the listener closed without an answer"
    codes = [msa_code(a) for a in answers]
    assert set(codes) <= {"AA", "AE", "AR"}, answers
    assert not any(b"internal error: send the message again" in a for a in answers), answers
    if "AA" not in codes:
        assert digest(url) == before
        assert set(inbound_outcomes_since(url, last_inbound)) <= {"rejected"}
