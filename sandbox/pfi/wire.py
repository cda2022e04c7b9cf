"""MLLP framing and ER7 reading for the sandbox PFI (its own code: a peer must not share the engine's)."""

from __future__ import annotations

import asyncio
import contextlib

START, END = b"\x0b", b"\x1c\r"


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


async def read_frame(reader: asyncio.StreamReader) -> str | None:
    """One framed message, read in chunks (a base64 CDA makes messages of several MB)."""
    buf = bytearray()
    while not buf.endswith(END):
        chunk = await reader.read(65536)
        if not chunk:
            return None
        buf += chunk
    start = buf.find(START)
    return bytes(buf[start + 1 : -len(END)]).decode("utf-8") if start >= 0 else None


async def exchange(host: str, port: int, message: str, timeout: float) -> str | None:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(frame(message))
            await writer.drain()
            return await read_frame(reader)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class Seg:
    """A segment split on `|`; `f(n)` is field n in HL7 numbering (MSH-aware)."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.parts = line.split("|")
        self.name = self.parts[0]

    def f(self, n: int) -> str:
        i = n - 1 if self.name == "MSH" else n
        return self.parts[i] if 0 <= i < len(self.parts) else ""

    def c(self, n: int, comp: int) -> str:
        parts = self.f(n).split("~")[0].split("^")
        return parts[comp - 1] if comp <= len(parts) else ""


def split(message: str) -> list[Seg]:
    return [Seg(s) for s in message.replace("\n", "\r").split("\r") if s.strip()]
