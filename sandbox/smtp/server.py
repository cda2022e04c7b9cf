"""An SMTP server on loopback (aiosmtpd) in a thread of its own, with its own event loop, so that it keeps
answering whatever the caller's loop does.

Security: `starttls` (STARTTLS offered and required before MAIL), `tls` (implicit TLS) or `none`. The
certificate comes from a test CA generated at start (`ca_pem` is the file clients verify against). Every
accepted message is recorded in `received` (envelope, Message-ID, raw bytes, TLS version) and written as
an .eml file under `folder`; a Message-ID seen before is accepted and flagged `duplicate`, so that tests
can prove nothing is delivered twice. Fault switches: `rcpt_reply` / `data_reply` (e.g. "550 5.1.1 No such
user", "451 4.3.0 Try again later") answer every RCPT / DATA instead of accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.smtp.pki import TestPki

log = logging.getLogger(__name__)
Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    subject: str | None
    data: bytes
    tls_version: str | None
    duplicate: bool
    path: Path | None
    at: dt.datetime


class _Handler:
    def __init__(self, owner: SmtpSandbox) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.owner.rcpt_reply:
            return self.owner.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.owner.data_reply:
            return self.owner.data_reply
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        received = self.owner.record(
            envelope.mail_from or "",
            tuple(envelope.rcpt_tos),
            bytes(envelope.original_content or envelope.content or b""),
            ssl_object.version() if ssl_object is not None else None,
        )
        return f"250 2.0.0 OK queued as {len(self.owner.received)}" + (
            " (duplicate)" if received.duplicate else ""
        )


class SmtpSandbox:
    """`async with SmtpSandbox(folder=...) as smtp: smtp.port, smtp.ca_pem, smtp.received` (or start/stop).

    `credentials` ({user: password}) turns on AUTH (offered after TLS only). Subclasses (the MSSanté
    operator, sandbox/mssante) swap the protocol class, the handler and the TLS context."""

    smtp_class: type[SMTP] = SMTP
    handler_class: type[_Handler] = _Handler

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        folder: Path | None = None,
        security: Security = "starttls",
        tls_dir: Path | None = None,
        credentials: dict[str, str] | None = None,
        hostname: str = "smtp.sandbox.localhost",
    ) -> None:
        self.host, self.port = host, port
        self.folder = folder
        self.security = security
        self.credentials = credentials
        self.hostname = hostname
        self._tls_dir = tls_dir
        self._own_tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self.pki: TestPki | None = None
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.received: list[Received] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def ca_pem(self) -> Path | None:
        """The test CA's certificate: what clients verify the server against (None without TLS)."""
        return self.pki.ca if self.pki else None

    # --- what came in ---------------------------------------------------------------------------------

    def record(self, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes, tls: str | None) -> Received:
        parsed = message_from_bytes(data, policy=default_policy)
        message_id = parsed.get("Message-ID")
        message_id = str(message_id).strip() if message_id else None
        with self._lock:
            duplicate = message_id is not None and message_id in self._seen
            if message_id:
                self._seen.add(message_id)
            n = len(self.received) + 1
            path = None
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                safe = re.sub(r"[^A-Za-z0-9._-]", "_", (message_id or "no-id").strip("<>"))[:80]
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
                path = self.folder / f"{stamp}-{n:05d}-{safe}.eml"
                path.write_bytes(data)
            received = Received(
                mail_from,
                rcpt_tos,
                message_id,
                str(parsed.get("Subject")) if parsed.get("Subject") else None,
                data,
                tls,
                duplicate,
                path,
                dt.datetime.now(dt.UTC),
            )
            self.received.append(received)
        log.info("sandbox SMTP: message %s accepted%s", n, " (duplicate Message-ID)" if duplicate else "")
        return received

    def by_message_id(self, message_id: str) -> list[Received]:
        wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
        return [r for r in self.received if r.message_id == wanted]

    # --- the server -----------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.security == "none":
            return None
        folder = self._tls_dir
        if folder is None:
            self._own_tls_dir = tempfile.TemporaryDirectory(prefix="sandbox-smtp-tls-")
            folder = Path(self._own_tls_dir.name)
        hosts = tuple(dict.fromkeys(("localhost", "127.0.0.1", self.host)))
        self.pki = TestPki.create(folder, hosts)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        return context

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and self.credentials.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok)

    def start(self) -> SmtpSandbox:
        context = self._tls_context()
        handler = self.handler_class(self)
        loop = asyncio.new_event_loop()

        def factory() -> SMTP:
            return self.smtp_class(
                handler,
                hostname=self.hostname,
                tls_context=context if self.security == "starttls" else None,
                require_starttls=self.security == "starttls",
                authenticator=self._authenticate if self.credentials else None,
                auth_required=bool(self.credentials),
                auth_require_tls=self.security != "none",
                loop=loop,
            )

        ssl_arg = context if self.security == "tls" else None
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="sandbox-smtp", daemon=True)
        self._thread.start()
        create = loop.create_server(factory, self.host, self.port, ssl=ssl_arg)
        try:
            self._server = asyncio.run_coroutine_threadsafe(create, loop).result(10)
        except BaseException:
            self._server = None
            self._stop_loop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _stop_loop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            loop.close()
        self._loop = self._thread = None

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        self._server = None
        self._stop_loop()
        if self._own_tls_dir is not None:
            self._own_tls_dir.cleanup()
            self._own_tls_dir = None

    async def __aenter__(self) -> SmtpSandbox:
        return self.start()

    async def __aexit__(self, *_exc: object) -> None:
        self.stop()

    def __enter__(self) -> SmtpSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
