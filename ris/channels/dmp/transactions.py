"""The three DMP requests, ready to post: ITI-41 (feed, replacement), ITI-57 (visibility / masking update)
and ITI-62 (deletion), each with a VIHF freshly signed for this attempt and the delivery's own ids."""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from ris.channels.dmp import metadata, mtom, soap, vihf
from ris.channels.dmp.client import DmpConfig, Request
from ris.documents.xds_metadata import CdaHeader


@dataclass(frozen=True)
class Signing:
    """The structure's certificate (PEM) and its private key, decrypted once (a passphrase-protected key
    costs a key derivation on every load)."""

    cert_pem: bytes
    key: PrivateKeyTypes

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, passphrase: bytes | None = None) -> Signing:
        return cls(cert_pem, serialization.load_pem_private_key(key_pem, passphrase))

    @classmethod
    def from_files(cls, cert: str, key: str, passphrase: str | None) -> Signing:
        """Loaded once per files (a renewed certificate is loaded again)."""
        return _signing_files(cert, key, passphrase, (os.stat(cert).st_mtime_ns, os.stat(key).st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _signing_files(cert: str, key: str, passphrase: str | None, _stamp: tuple[int, int]) -> Signing:
    with open(cert, "rb") as c, open(key, "rb") as k:
        return Signing.from_pem(c.read(), k.read(), passphrase.encode() if passphrase else None)


@dataclass(frozen=True)
class Context:
    """Who sends: the endpoints, the signing material, the software, the structure's sector (J61)."""

    config: DmpConfig
    signing: Signing
    software: vihf.Software
    sector: str
    secret_connection: bool = False


def _vihf(header: CdaHeader, ctx: Context, now: dt.datetime) -> etree._Element:
    unsigned = vihf.assertion(
        header,
        ctx.software,
        issued_by=vihf.issuer(ctx.signing.cert_pem),
        sector=ctx.sector,
        now=now,
        secret_connection=ctx.secret_connection,
    )
    return vihf.sign(unsigned, ctx.signing.key, ctx.signing.cert_pem)


def _message_id(key: str) -> str:
    """Stable per delivery: a retry is recognisably the same message."""
    return f"urn:uuid:{uuid.uuid5(uuid.UUID(hex=key), 'message')}"


def provide(
    cda: bytes, header: CdaHeader, sub: metadata.Submission, ctx: Context, now: dt.datetime
) -> Request:
    """ITI-41 Provide and Register Document Set-b, MTOM, the CDA as the one attachment."""
    cid = f"{uuid.uuid5(uuid.UUID(hex=sub.ids.key), 'document').hex}@ris-engine"
    body = metadata.provide_and_register(header, sub, cid)
    message_id = _message_id(sub.ids.key)
    url = ctx.config.repository_url
    envelope = soap.envelope(soap.ITI41, url, message_id, body, _vihf(header, ctx, now))
    content_type, payload = mtom.multipart(envelope, [mtom.Part(cid, cda)], soap.ITI41)
    return Request(url, soap.ITI41, message_id, content_type, payload)


def update(header: CdaHeader, sub: metadata.Submission, ctx: Context, now: dt.datetime) -> Request:
    """ITI-57 Update Document Set: a new version of the entry with its new confidentiality codes."""
    body = metadata.submit_objects(header, sub)
    message_id = _message_id(sub.ids.key)
    url = ctx.config.registry_url
    content_type, payload = mtom.soap(
        soap.envelope(soap.ITI57, url, message_id, body, _vihf(header, ctx, now)), soap.ITI57
    )
    return Request(url, soap.ITI57, message_id, content_type, payload)


def delete(header: CdaHeader, key: str, entries: list[str], ctx: Context, now: dt.datetime) -> Request:
    """ITI-62 Delete Document Set of the entries (every version the engine submitted)."""
    message_id = _message_id(key)
    url = ctx.config.registry_url
    envelope = soap.envelope(
        soap.ITI62, url, message_id, metadata.remove_objects(entries), _vihf(header, ctx, now)
    )
    content_type, payload = mtom.soap(envelope, soap.ITI62)
    return Request(url, soap.ITI62, message_id, content_type, payload)
