"""HL7 MLLP over asyncio: framing, a client exchange (message -> ACK) and a hardened server.

Framing is `0x0B` + message + `0x1C 0x0D`. Reads are chunked: a base64 CDA makes messages of several MB
(library-notes.md §1: byte-by-byte reading is quadratic); one read may carry several frames, or a part.

The server faces peers it does not control (the PAM-FR feed, the PFI), as an interface engine does:
every frame that arrives gets an answer (the handler's ACK, or our NAK with ERR when the bytes cannot be
decoded or the handler fails), the charset is the one MSH-18 declares, and idle links, the number of
links and the memory buffered across all links are bounded. TLS with client certificates is optional.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ris.hl7v2.ack_writer import Problem, Received, build_ack
from ris.hl7v2.er7 import Segment

START = b"\x0b"
END = b"\x1c\r"
CHUNK = 65536

# HL7 table 0211 (MSH-18) -> Python codec; an empty MSH-18 takes the listener's default charset.
CHARSETS = {
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
    "ASCII": "ascii",
}

log = logging.getLogger(__name__)


class MllpError(ConnectionError):
    """The peer broke the MLLP framing or closed the link before a whole message arrived."""


class MllpTimeout(TimeoutError):
    """No complete answer within the configured time."""


class UndecodableMessage(ValueError):
    """A frame whose bytes are not text in the charset it declares: answered AR, never handled."""

    def __init__(self, location: str, text: str) -> None:
        super().__init__(text)
        self.location = location


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


@dataclass(frozen=True)
class Limits:
    """What one listener accepts; the defaults suit a site feed (a CDA of a few MB per message)."""

    idle_timeout: float = 300.0  # seconds without a byte before the link is closed
    max_connections: int = 64
    max_message: int = 32 * 1024 * 1024  # bytes of one frame
    max_buffered: int = 256 * 1024 * 1024  # bytes held for all links together


@dataclass(frozen=True)
class Tls:
    """Server certificate, and the CA of the client certificates when peers must present one."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            ctx.load_verify_locations(self.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a link: its address and, over TLS, its certificate subject CN."""

    address: str
    certificate_cn: str | None = None

    def is_in(self, networks: tuple[str, ...]) -> bool:
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


class FrameReader:
    """Splits a byte stream into frames: a read may end inside a frame or hold several of them."""

    def __init__(self, reader: asyncio.StreamReader, budget: MemoryBudget, limits: Limits) -> None:
        self.reader, self.budget, self.limits = reader, budget, limits
        self.buf = bytearray()

    async def next(self) -> bytes | None:
        """The next frame's payload; None when the peer closed cleanly between frames."""
        while True:
            found = self._cut()
            if found is not None:
                return found
            async with asyncio.timeout(self.limits.idle_timeout):
                chunk = await self.reader.read(CHUNK)
            if not chunk:
                if self.buf.strip():
                    raise MllpError("connection closed in the middle of a message")
                return None
            if len(self.buf) + len(chunk) > self.limits.max_message + len(END) + 1:
                raise MllpError(f"message larger than {self.limits.max_message} bytes")
            if not self.budget.take(len(chunk)):
                raise MllpError("the listener holds too much unfinished data: try again later")
            self.buf += chunk

    def _cut(self) -> bytes | None:
        start = self.buf.find(START)
        if start < 0:
            if self.buf.strip():
                raise MllpError("message does not start with the MLLP start block 0x0B")
            self._drop(len(self.buf))
            return None
        if self.buf[:start].strip():
            raise MllpError("bytes outside an MLLP frame")
        end = self.buf.find(END, start + 1)
        if end < 0:
            return None
        payload = bytes(self.buf[start + 1 : end])
        self._drop(end + len(END))
        return payload

    def _drop(self, n: int) -> None:
        del self.buf[:n]
        self.budget.give(n)

    def release(self) -> None:
        self._drop(len(self.buf))


class MemoryBudget:
    """Bytes buffered by all the links of one server (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)


async def read_frame(reader: asyncio.StreamReader) -> str | None:
    """Read one framed UTF-8 message (the client side: our peers answer in UTF-8)."""
    limits = Limits(idle_timeout=float("inf"))
    payload = await FrameReader(reader, MemoryBudget(limits.max_buffered), limits).next()
    return None if payload is None else payload.decode("utf-8")


def msh_of(payload: bytes) -> Segment | None:
    """The MSH segment read as Latin-1 (never fails, ASCII-compatible): enough to mirror in a NAK and to
    find MSH-18 before the whole message is decoded."""
    first = payload.lstrip(b"\r\n").split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    return Segment(first) if first.startswith("MSH") and len(first) >= 8 else None


def decode(payload: bytes, default_charset: str = "utf-8") -> str:
    """The message as text in the charset MSH-18 declares (HL7 table 0211)."""
    msh = msh_of(payload)
    if msh is None:
        raise UndecodableMessage("MSH", "the message does not start with an MSH segment")
    declared = msh.field(18).split("~")[0].strip()  # the first repetition names the default set
    codec = CHARSETS.get(declared.upper()) if declared else default_charset
    if codec is None:
        raise UndecodableMessage("MSH-18", f"character set {declared!r} is not supported (8859/1, UTF-8)")
    try:
        return payload.decode(codec)
    except UnicodeDecodeError as exc:
        name = declared or default_charset
        raise UndecodableMessage("MSH-18", f"byte {exc.start} is not valid {name}") from None


def nak(payload: bytes, code: str, problem: Problem) -> str:
    """Our answer to a frame no handler saw: the received MSH mirrored when there is one."""
    msh = msh_of(payload)
    received = Received.read(msh) if msh is not None else Received()
    version = (msh.field(12).split("^")[0] if msh is not None else "") or "2.5"
    now = dt.datetime.now(dt.UTC)
    return build_ack(code, received, version=version, now=now, tz="UTC", problem=problem)


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


Handler = Callable[[str, Peer], Awaitable[str]]


class MllpServer:
    """Accepts framed messages and answers each with what `handler(message, peer)` returns (an ACK).

    Several messages may follow each other on one connection; each gets its answer in order. A frame
    that cannot be decoded gets AR with ERR; a handler that fails gets AE (the sender resends later)."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: Limits | None = None,
        tls: Tls | None = None,
        default_charset: str = "utf-8",
        on_start: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.handler = handler
        self.host, self.port = host, port
        self.limits = limits or Limits()
        self.tls, self.default_charset, self.on_start = tls, default_charset, on_start
        self.budget = MemoryBudget(self.limits.max_buffered)
        self.connections = 0
        self._links: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> MllpServer:
        if self.on_start is not None:
            await self.on_start()  # e.g. recovery of messages a crash left half-way, before new ones
        ssl_context = self.tls.context() if self.tls else None
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=CHUNK, ssl=ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._links.values():  # open links end with the server (their reads see EOF)
                writer.transport.abort()
            await asyncio.gather(*self._links, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MllpServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.limits.max_connections:
            log.warning("MLLP connection refused: %d connections already open", self.connections)
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        self._links[task] = writer
        frames = FrameReader(reader, self.budget, self.limits)
        peer = _peer(writer)
        try:
            while (payload := await frames.next()) is not None:
                writer.write(frame(await self._answer(payload, peer)))
                await writer.drain()
        except MllpError as exc:
            with contextlib.suppress(ConnectionError):  # say why before closing: never a silent close
                writer.write(frame(nak(b"", "AR", Problem("100", str(exc)))))
                await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass  # an idle or broken peer only loses its own connection
        finally:
            frames.release()
            self.connections -= 1
            self._links.pop(task, None)
            writer.close()

    async def _answer(self, payload: bytes, peer: Peer) -> str:
        try:
            message = decode(payload, self.default_charset)
        except UndecodableMessage as exc:
            condition = "100" if exc.location == "MSH" else "102"
            return nak(payload, "AR", Problem(condition, str(exc), exc.location))
        try:
            return await self.handler(message, peer)
        except Exception as exc:
            # the type and place only: an exception's text may quote the message (health data)
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            place = f"{where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else "?"
            log.error("MLLP handler failed with %s at %s: answered AE", type(exc).__name__, place)
            return nak(payload, "AE", Problem("207", "internal error: send the message again later"))


def _peer(writer: asyncio.StreamWriter) -> Peer:
    address = writer.get_extra_info("peername")
    cert = writer.get_extra_info("peercert") or {}
    cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
    return Peer(address[0] if address else "", cn)
