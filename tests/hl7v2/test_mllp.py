"""MLLP framing, client exchange and server (ris/hl7v2/mllp.py)."""

from __future__ import annotations

import asyncio

import pytest

from ris.hl7v2 import mllp


async def echo(message: str, _peer: mllp.Peer) -> str:
    return f"MSA|AA|{len(message)}"


async def test_a_message_of_several_mb_goes_and_its_answer_comes_back() -> None:
    message = "MSH|^~\\&|é\r" + "OBX|1|ED|||" + "A" * 3_000_000
    async with mllp.MllpServer(echo) as server:
        answer = await mllp.exchange("127.0.0.1", server.port, message, timeout=10)
    assert answer == f"MSA|AA|{len(message)}"


def test_framing() -> None:
    assert mllp.frame("MSH|é") == b"\x0bMSH|\xc3\xa9\x1c\r"


async def test_a_peer_closing_mid_message_is_a_framing_error() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x0bMSH|half")
    reader.feed_eof()
    with pytest.raises(mllp.MllpError):
        await mllp.read_frame(reader)
