"""The scheduled Annuaire Santé import (RIS.ANN.01, RIS.ANN.04): thin task around `ris.directory`. The
result and the logs hold counts and line numbers only."""

from __future__ import annotations

import asyncio

from prefect import task

from ris.directory.importer import import_file
from ris.directory.importer import new_run_id as new_import_run
from ris.operations import scheduled
from ris.site.engine import EngineConfig
from ris.store.db import unit_of_work
from tasks.run_context import run_logger, store_retries

SHOWN_REFUSALS = 20
__all__ = ["import_extraction", "new_import_run"]


@task(name="import-directory-extraction", task_run_name="import-directory-{kind}", **store_retries())
async def import_extraction(kind: str, source: str, run: str) -> dict | None:
    """Fetch (when an https address) and import one extraction: `persons` or `mailboxes`. None when the
    source is out of this worker's reach (its host name does not resolve): nothing imported, one line
    says how to give it a source."""
    log = run_logger(__name__)
    folder = EngineConfig.from_env().data_dir / "directory"
    try:
        path = await asyncio.to_thread(scheduled.reachable_copy, source, folder)
    except scheduled.NotConfigured as exc:
        log.info("directory %s not imported: %s", kind, exc)
        return None
    summary = await unit_of_work(import_file, path, kind, run)
    counts = summary.as_dict()
    counts["refused_lines"] = [entry["line"] for entry in counts["refused_lines"][:SHOWN_REFUSALS]]
    log.info(
        "directory %s: %s lines, %s created, %s updated, %s unchanged, %s refused",
        kind,
        summary.lines,
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.refused_count,
    )
    return counts
