"""httpx clients whose connections check the server's certificate chain (revocation) right after the TLS
handshake, before the request is written: the DMP, INSi and Pro Santé Connect links.

httpx has no hook between the handshake and the request; httpcore's network backend has one: its stream's
`start_tls` returns the TLS stream, which is checked (`TlsPolicy.check`) before httpcore writes on it. The
transports below are httpx's own, with their connection pool built on that backend. A refusal leaves the
client as `CertificateRevoked` / `RevocationUnknown`, the connection closed, nothing sent.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

from ris.tls.policy import TlsPolicy


class _CheckedAsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream, policy: TlsPolicy) -> None:
        self._stream, self._policy = stream, policy

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        secured = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        try:
            await self._policy.acheck(secured.get_extra_info("ssl_object"))
        except BaseException:
            await secured.aclose()
            raise
        return secured

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CheckedAsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: TlsPolicy) -> None:
        self._backend, self._policy = httpcore.AnyIOBackend(), policy

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _CheckedAsyncStream(await self._backend.connect_tcp(*args, **kwargs), self._policy)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _CheckedAsyncStream(await self._backend.connect_unix_socket(*args, **kwargs), self._policy)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _CheckedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, policy: TlsPolicy) -> None:
        self._stream, self._policy = stream, policy

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        secured = self._stream.start_tls(ssl_context, server_hostname, timeout)
        try:
            self._policy.check(secured.get_extra_info("ssl_object"))
        except BaseException:
            secured.close()
            raise
        return secured

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CheckedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: TlsPolicy) -> None:
        self._backend, self._policy = httpcore.SyncBackend(), policy

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _CheckedStream(self._backend.connect_tcp(*args, **kwargs), self._policy)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _CheckedStream(self._backend.connect_unix_socket(*args, **kwargs), self._policy)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults
POOL = {
    "max_connections": LIMITS.max_connections,
    "max_keepalive_connections": LIMITS.max_keepalive_connections,
    "keepalive_expiry": LIMITS.keepalive_expiry,
}


class CheckedAsyncTransport(httpx.AsyncHTTPTransport):
    """httpx's async transport, its pool on the checking backend (httpx builds the pool in `__init__`
    with no way to hand it a backend: it is built again here, with the same options)."""

    def __init__(self, policy: TlsPolicy, context: ssl.SSLContext) -> None:
        super().__init__(verify=context, limits=LIMITS)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=_CheckedAsyncBackend(policy), **POOL
        )


class CheckedTransport(httpx.HTTPTransport):
    """httpx's sync transport, its pool on the checking backend."""

    def __init__(self, policy: TlsPolicy, context: ssl.SSLContext) -> None:
        super().__init__(verify=context, limits=LIMITS)
        backend = _CheckedBackend(policy)
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend, **POOL)


def async_client(
    policy: TlsPolicy, *, timeout: float, context: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """An async client on `policy` (`context`: an already loaded context of that policy)."""
    transport = CheckedAsyncTransport(policy, context or policy.context())
    return httpx.AsyncClient(transport=transport, timeout=timeout)


def client(policy: TlsPolicy, *, timeout: float) -> httpx.Client:
    """A sync client on `policy`."""
    return httpx.Client(transport=CheckedTransport(policy, policy.context()), timeout=timeout)
