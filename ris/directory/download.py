"""Where a scheduled import finds an extraction: a local path, or the https address annuaire.sante.fr
publishes it at, downloaded by streaming into the data folder (a 760 MB body never sits in memory)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ris.directory.extraction import ExtractionRefused

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(60.0, read=300.0)


def local_copy(source: str, folder: Path) -> Path:
    """The path to read `source` from: itself when local, else a fresh download into `folder`."""
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ExtractionRefused(f"{source}: no such file")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (Path(parts.path).name or "extraction")
    partial = target.with_name(target.name + ".part")
    try:
        with httpx.stream("GET", source, timeout=TIMEOUT, follow_redirects=True) as response:
            response.raise_for_status()
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise ExtractionRefused(f"{source}: download failed ({exc.__class__.__name__}: {exc})") from exc
    partial.replace(target)  # a half-downloaded file never replaces the previous good one
    return target
