"""An MLLP exchange over TLS, for the listener suites that check who may send with a certificate."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from ris.hl7v2 import mllp
from sandbox.pki import write_cert, write_key


def write_issued(folder: Path, issued: dict, files: dict[str, Path]) -> dict[str, Path]:
    """Write each issued (certificate, key) pair as `<name>.pem` / `<name>.key` into `folder`, listed in
    `files` under `name` and `name_key`; returns `files`."""
    for name, (cert, key) in issued.items():
        files[name], files[f"{name}_key"] = folder / f"{name}.pem", folder / f"{name}.key"
        write_cert(files[name], cert)
        write_key(files[f"{name}_key"], key)
    return files


async def tls_exchange(port: int, message: str, context: ssl.SSLContext) -> str | None:
    """Send one framed message over TLS to the listener on `port`; its answer, or None when it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(mllp.frame(message))
        await writer.drain()
        return await asyncio.wait_for(mllp.read_frame(reader), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
