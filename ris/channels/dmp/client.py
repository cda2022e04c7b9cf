"""Posting a DMP request over HTTPS with the structure's client certificate (httpx), and what came of it:
accepted, refused for good (registry error, SOAP Sender fault, 4xx, untrusted or revoked server), or a
transient fault worth a retry with the very same request (5xx, Receiver fault, busy registry, connection,
timeout, a revocation status no responder gave). The server's chain is checked for revocation after the
handshake, before the request is written (`ris.tls`)."""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass, field

import httpx

from ris.channels.dmp.soap import read_answer
from ris.tls import RevocationUnknown, TlsPolicy, TlsRefused, TlsSettings, client_policy
from ris.tls.http import async_client


@dataclass(frozen=True)
class DmpConfig:
    repository_url: str
    registry_url: str
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    key_passphrase: str | None = None
    timeout_s: float = 30.0
    tls: TlsSettings = field(default_factory=TlsSettings)  # the site's revocation checking

    def policy(self) -> TlsPolicy:
        return client_policy(f"DMP {httpx.URL(self.repository_url).netloc.decode()}", self)


@dataclass(frozen=True)
class Request:
    """One SOAP request ready to post: where, which transaction, and its bytes."""

    url: str
    action: str
    message_id: str
    content_type: str
    body: bytes


class DmpRefused(Exception):
    """A permanent refusal: failing at once, with the code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DmpTransient(Exception):
    """A fault that may pass: the same request is sent again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _stamp(*paths: str | None) -> tuple[int, ...]:
    """When the files last changed: a renewed certificate is loaded again."""
    return tuple(os.stat(p).st_mtime_ns if p else 0 for p in paths)


def tls_context(config: DmpConfig) -> ssl.SSLContext:
    return _tls_context(config, _stamp(config.ca_bundle, config.client_cert, config.client_key))


@functools.lru_cache(maxsize=8)
def _tls_context(config: DmpConfig, _files: tuple[int, ...]) -> ssl.SSLContext:
    """One context per configuration and files: loading a passphrase-protected key costs a key
    derivation."""
    return config.policy().context()


def client(config: DmpConfig) -> httpx.AsyncClient:
    """A client for several requests (keep-alive); `post` makes its own when given none."""
    return async_client(config.policy(), timeout=config.timeout_s, context=tls_context(config))


async def post(request: Request, config: DmpConfig, http: httpx.AsyncClient | None = None) -> str:
    """Send `request`; returns the registry's answer in words. Raises DmpRefused or DmpTransient."""
    own = http is None
    http = http or client(config)
    try:
        response = await http.post(
            request.url, content=request.body, headers={"Content-Type": request.content_type}
        )
    except RevocationUnknown as exc:
        raise DmpTransient(str(exc)) from exc
    except TlsRefused as exc:  # a revoked server certificate
        raise DmpRefused(str(exc)) from exc
    except ssl.SSLCertVerificationError as exc:
        raise DmpRefused(f"DMP server not trusted: {exc.verify_message}") from exc
    except httpx.ConnectError as exc:
        if isinstance(exc.__context__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            exc
        ):
            raise DmpRefused(f"DMP server not trusted: {exc}") from exc
        raise DmpTransient(f"DMP unreachable: {exc or type(exc).__name__}") from exc
    except httpx.TransportError as exc:  # timeouts, resets, a response lost on the way
        raise DmpTransient(f"DMP connection fault: {type(exc).__name__} {exc}".strip()) from exc
    except ssl.SSLError as exc:  # a TLS 1.3 alert (e.g. certificate required) read after the handshake
        raise DmpTransient(f"DMP connection fault: TLS {exc.reason or exc}") from exc
    finally:
        if own:
            await http.aclose()
    content_type = response.headers.get("Content-Type", "")
    if "xml" not in content_type and "multipart" not in content_type:
        status = f"DMP HTTP {response.status_code}"
        raise (DmpTransient(status) if response.status_code >= 500 else DmpRefused(status))
    try:
        answer = read_answer(content_type, response.content)
    except (ValueError, SyntaxError) as exc:
        raise DmpTransient(f"DMP answer unreadable (HTTP {response.status_code}): {exc}") from exc
    if answer.success:
        return f"Success (HTTP {response.status_code})"
    if answer.transient or (
        response.status_code >= 500 and answer.fault and not answer.errors and "Sender" not in answer.fault
    ):
        raise DmpTransient(answer.reason)
    raise DmpRefused(answer.reason)
