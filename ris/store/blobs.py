"""Content-addressed storage of produced artefacts (CDA, PDF)."""

from __future__ import annotations

import hashlib

from sqlmodel import Session

from ris.store.models import Blob


def put(session: Session, content: bytes, media_type: str) -> str:
    """Store `content` once and return its SHA-256; storing the same bytes again is a no-op."""
    digest = hashlib.sha256(content).hexdigest()
    if session.get(Blob, digest) is None:
        session.add(Blob(sha256=digest, media_type=media_type, size=len(content), content=content))
    return digest


def get(session: Session, digest: str) -> bytes:
    blob = session.get(Blob, digest)
    if blob is None:
        raise KeyError(f"no stored artefact with sha256 {digest}")
    return blob.content
