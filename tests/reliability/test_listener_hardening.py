"""The MLLP listeners as a hostile or unlucky peer sees them (real sockets on loopback): every frame is
answered (a NAK with ERR when it cannot be read), frames are split whatever the reads, the charset is the
one MSH-18 declares, and idle links, the number of links and the memory they hold are bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlmodel import Session, select

from ris.hl7v2 import mllp
from ris.hl7v2.inbound import Allowlist
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from ris.store.models import AuditEntry, InboundMessage, Patient
from tests.reliability.pam_messages import err, msa, pam

OWN = IntakePolicy(own_domain=frozenset({"GAM"}))


def rows(db_url: str, model) -> list:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(model).order_by(model.id)).all())


@contextlib.asynccontextmanager
async def link(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def ask(reader, writer, data: bytes) -> str:
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(mllp.read_frame(reader), 10)
    assert answer is not None, "the listener closed without answering"
    return answer


@contextlib.asynccontextmanager
async def pam_listener(db_url: str, **kw) -> AsyncIterator[mllp.MllpServer]:
    async with PamIntake(OWN, database_url=db_url, **kw).listener() as server:
        yield server


async def test_an_8859_1_feed_is_read_with_its_charset(db_url: str) -> None:
    text = pam(1, street="BÉRANGÈRE", charset="8859/1")
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        answer = await ask(r, w, mllp.START + text.encode("latin-1") + mllp.END)
    assert msa(answer)[1] == "AA"
    [stored] = rows(db_url, InboundMessage)
    assert "|BÉRANGÈRE^^PARIS" in stored.raw


async def test_bytes_not_in_the_declared_charset_get_ar_and_the_link_keeps_serving(db_url: str) -> None:
    latin1_said_utf8 = pam(1, street="BÉRANGÈRE").encode("latin-1")
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        refused = await ask(r, w, mllp.START + latin1_said_utf8 + mllp.END)
        accepted = await ask(r, w, mllp.frame(pam(2)))
    assert msa(refused)[1:3] == ["AR", "R1"] and "not valid UNICODE UTF-8" in err(refused)
    assert "|MSH^1^18|" in err(refused)
    assert msa(accepted)[1] == "AA"
    assert [p.ipp for p in rows(db_url, Patient)] == ["R00002"]


async def test_an_unknown_charset_is_refused_by_name(db_url: str) -> None:
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        answer = await ask(r, w, mllp.frame(pam(1, charset="EBCDIC")))
    assert msa(answer)[1] == "AR" and "character set 'EBCDIC' is not supported" in err(answer)
    assert rows(db_url, InboundMessage) == []


async def test_two_frames_in_one_write_get_two_answers_in_order(db_url: str) -> None:
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        w.write(mllp.frame(pam(1)) + mllp.frame(pam(2)))
        await w.drain()
        answers = [await asyncio.wait_for(mllp.read_frame(r), 10) for _ in range(2)]
    assert [msa(a)[1:3] for a in answers] == [["AA", "R1"], ["AA", "R2"]]
    assert len(rows(db_url, Patient)) == 2


async def test_a_frame_split_across_writes_is_put_back_together(db_url: str) -> None:
    data = mllp.frame(pam(1))
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        for i in range(0, len(data), 7):
            w.write(data[i : i + 7])
            await w.drain()
        answer = await asyncio.wait_for(mllp.read_frame(r), 10)
    assert msa(answer)[1] == "AA"


async def test_bytes_outside_a_frame_get_a_nak_before_the_close(db_url: str) -> None:
    async with pam_listener(db_url) as server, link(server.port) as (r, w):
        answer = await ask(r, w, b"GET / HTTP/1.0\r\n\r\n")
        assert await r.read() == b""
    assert msa(answer)[1] == "AR" and "MLLP" in err(answer)


async def test_an_idle_link_is_closed(db_url: str) -> None:
    limits = mllp.Limits(idle_timeout=0.2)
    async with pam_listener(db_url, limits=limits) as server, link(server.port) as (r, _w):
        assert await asyncio.wait_for(r.read(), 5) == b""


async def test_links_beyond_the_cap_are_closed_at_once(db_url: str) -> None:
    async with pam_listener(db_url, limits=mllp.Limits(max_connections=2)) as server:
        async with link(server.port) as (r1, w1), link(server.port) as (r2, w2):
            await ask(r1, w1, mllp.frame(pam(1)))  # both links are open and served
            await ask(r2, w2, mllp.frame(pam(2)))
            async with link(server.port) as (r3, _w3):
                assert await asyncio.wait_for(r3.read(), 5) == b""
        async with link(server.port) as (r4, w4):  # freed slots serve again
            assert msa(await ask(r4, w4, mllp.frame(pam(3))))[1] == "AA"


async def test_a_message_over_the_size_limit_is_refused_and_nothing_stored(db_url: str) -> None:
    limits = mllp.Limits(max_message=2000)
    async with pam_listener(db_url, limits=limits) as server, link(server.port) as (r, w):
        answer = await ask(r, w, mllp.frame(pam(1) + "NTE|1||" + "A" * 5000 + "\r"))
    assert msa(answer)[1] == "AR" and "larger than 2000 bytes" in err(answer)
    assert rows(db_url, InboundMessage) == []


async def test_the_memory_held_by_all_links_together_is_bounded(db_url: str) -> None:
    limits = mllp.Limits(max_message=60_000, max_buffered=100_000)
    async with pam_listener(db_url, limits=limits) as server:
        async with link(server.port) as (r1, w1), link(server.port) as (r2, w2):
            w1.write(mllp.START + b"MSH|" + b"A" * 59_000)  # unfinished: held by the listener
            await w1.drain()
            await asyncio.sleep(0.2)
            answer = await ask(r2, w2, mllp.START + b"MSH|" + b"B" * 59_000)
            assert msa(answer)[1] == "AR" and "too much unfinished data" in err(answer)
            w1.write(b"\r" + mllp.END)  # the first link still completes its frame
            await w1.drain()
            first = await asyncio.wait_for(mllp.read_frame(r1), 10)
        assert first is not None and msa(first)[1] == "AR"  # an MSH without MSH-10: read, then refused
        assert server.budget.used == 0


async def test_a_database_failure_is_answered_ae_not_a_silent_close(db_url: str) -> None:
    async with pam_listener(db_url) as server:
        with db.get_engine(db_url).begin() as connection:  # the store breaks under the listener
            connection.exec_driver_sql("ALTER TABLE inboundmessage RENAME TO inboundmessage_away")
        answer = await mllp.exchange("127.0.0.1", server.port, pam(1), timeout=10)
    assert msa(answer)[1] == "AE" and "send the message again later" in err(answer)


async def test_a_sender_outside_the_allowlist_is_refused_audited_and_nothing_stored(db_url: str) -> None:
    allow = Allowlist(senders=frozenset({"GAM"}), peers=("127.0.0.0/8",))
    async with pam_listener(db_url, allowlist=allow) as server:
        forged = await mllp.exchange("127.0.0.1", server.port, pam(1, app="ATTACKER"), timeout=10)
        genuine = await mllp.exchange("127.0.0.1", server.port, pam(2), timeout=10)
    assert msa(forged)[1] == "AR" and r"sender ATTACKER\S\CHU-X is not allowed" in err(forged)
    assert msa(genuine)[1] == "AA"
    assert [p.ipp for p in rows(db_url, Patient)] == ["R00002"]
    assert [r.control_id for r in rows(db_url, InboundMessage)] == ["R2"]
    [refusal] = [a for a in rows(db_url, AuditEntry) if a.action == "hl7.refused"]
    assert refusal.actor == "hl7:ATTACKER^CHU-X" and refusal.detail["peer"] == "127.0.0.1"


async def test_a_peer_address_outside_the_allowlist_is_refused(db_url: str) -> None:
    allow = Allowlist(peers=("10.0.0.0/8",))
    async with pam_listener(db_url, allowlist=allow) as server:
        answer = await mllp.exchange("127.0.0.1", server.port, pam(1), timeout=10)
    assert msa(answer)[1] == "AR" and "peer address is not allowed" in err(answer)
    assert rows(db_url, Patient) == []


@pytest.mark.parametrize("charset", ["8859/1", "UNICODE UTF-8"])
async def test_mllp_decode_reads_both_required_charsets(charset: str) -> None:
    text = pam(1, street="ÉLODIE", charset=charset)
    codec = mllp.CHARSETS[charset]
    assert mllp.decode(text.encode(codec)) == text
