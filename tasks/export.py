"""The portability export (RIS.PORT.01) as a task: a thin wrapper around `ris.export`, writing into the
engine's data folder unless told where. Its result and logs hold the folder, counts and hashes only."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from prefect import task

from blocks.site import load_site_settings
from ris.export.verify import verify_export
from ris.export.writer import export_database
from ris.site.engine import EngineConfig
from ris.store.models import utcnow
from tasks.run_context import run_logger


def default_folder() -> Path:
    """`<data folder>/exports/<UTC timestamp>`: a new folder per export."""
    return EngineConfig.from_env().data_dir / "exports" / f"{utcnow():%Y%m%dT%H%M%SZ}"


@task(name="portability-export")
async def write_portability_export(out: str | None, since: dt.date | None, rpps: str | None = None) -> dict:
    """Write the export (one professional's reports when `rpps` is given), then re-read it to prove it
    complete; returns {"folder", "counts", "since", "rpps"}."""
    log = run_logger(__name__)
    folder = Path(out) if out else default_folder()
    # `since` is a day of the site's calendar; the whole history needs no setting (as `ris export`), so
    # the nightly export runs before the site is configured too.
    zone = (await load_site_settings()).timezone if since else "UTC"
    manifest = await asyncio.to_thread(export_database, folder, since=since, zone=zone, rpps=rpps)
    await asyncio.to_thread(verify_export, folder)
    log.info("portability export written and verified in %s: %s", folder, manifest["counts"])
    return {"folder": str(folder), "counts": manifest["counts"], "since": manifest["since"], "rpps": rpps}
