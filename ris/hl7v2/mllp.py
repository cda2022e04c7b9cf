"""HL7 MLLP over asyncio: framing, a client exchange (message -> ACK) and a server.

Framing is `0x0B` + message + `0x1C 0x0D`. Reads are chunked: a base64 CDA makes messages of several MB
(library-notes.md §1: byte-by-byte reading is quadratic).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

START = b"\x0b"
END = b"\x1c\r"
CHUNK = 65536
MAX_MESSAGE = 64 * 1024 * 1024


class MllpError(ConnectionError):
    """The peer broke the MLLP framing or closed the link before a whole message arrived."""


class MllpTimeout(TimeoutError):
    """No complete answer within the configured time."""


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


async def read_frame(reader: asyncio.StreamReader) -> str | None:
    """Read one framed message; None when the peer closed the link cleanly between messages."""
    buf = bytearray()
    while True:
        chunk = await reader.read(CHUNK)
        if not chunk:
            if buf.strip():
                raise MllpError("connection closed in the middle of a message")
            return None
        buf += chunk
        if len(buf) > MAX_MESSAGE:
            raise MllpError(f"message larger than {MAX_MESSAGE} bytes")
        if buf.endswith(END):
            break
    start = buf.find(START)
    if start < 0:
        raise MllpError("message does not start with the MLLP start block 0x0B")
    return bytes(buf[start + 1 : -len(END)]).decode("utf-8")


async def exchange(host: str, port: int, message: str, *, timeout: float) -> str:
    """Send one message on a fresh connection and return the peer's answer (original-mode exchange)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(frame(message))
                await writer.drain()
                answer = await read_frame(reader)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise MllpTimeout(f"no answer from {host}:{port} within {timeout:g} s") from exc
    if answer is None:
        raise MllpError(f"{host}:{port} closed the connection without answering")
    return answer


Handler = Callable[[str], Awaitable[str]]


class MllpServer:
    """Accepts framed messages and answers each with what `handler` returns (usually an ACK).

    Several messages may follow each other on one connection; each gets its answer in order."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> MllpServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=CHUNK)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MllpServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (message := await read_frame(reader)) is not None:
                writer.write(frame(await self.handler(message)))
                await writer.drain()
        except (MllpError, ConnectionError):
            pass  # a broken peer only loses its own connection
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
