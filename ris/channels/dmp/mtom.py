"""A small MTOM/XOP (multipart/related) builder for SOAP 1.2: zeep cannot send MTOM (library-notes.md §3).

The root part is the envelope serialised without an XML declaration (some MTOM parsers reject it); each
binary part travels as is (Content-Transfer-Encoding: binary) under the Content-ID its xop:Include names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    cid: str
    content: bytes
    media_type: str = "application/octet-stream"


def new_cid(host: str = "ris-engine") -> str:
    return f"{uuid.uuid4().hex}@{host}"


def multipart(root_xml: bytes, parts: list[Part], action: str) -> tuple[str, bytes]:
    """(Content-Type header, body) of an MTOM request carrying `root_xml` and `parts`."""
    if root_xml.lstrip().startswith(b"<?xml"):
        raise ValueError("MTOM root part: serialise the envelope without an XML declaration")
    root = f"root.{uuid.uuid4().hex}@ris-engine"
    while True:  # a boundary that occurs in no part
        boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
        if not any(boundary.encode() in p for p in (root_xml, *(part.content for part in parts))):
            break
    chunks = [
        f"--{boundary}\r\n"
        'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{root}>\r\n\r\n".encode(),
        root_xml,
        b"\r\n",
    ]
    for part in parts:
        chunks += [
            f"--{boundary}\r\nContent-Type: {part.media_type}\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{part.cid}>\r\n\r\n".encode(),
            part.content,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<{root}>"; '
        f'start-info="application/soap+xml"; action="{action}"'
    )
    return content_type, b"".join(chunks)


def soap(root_xml: bytes, action: str) -> tuple[str, bytes]:
    """A plain SOAP 1.2 request (no attachment): ITI-57 and ITI-62."""
    return f'application/soap+xml; charset=UTF-8; action="{action}"', root_xml
