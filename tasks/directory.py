"""The scheduled Annuaire Santé import (RIS.ANN.01, RIS.ANN.04): thin task around `ris.directory`. The
result and the logs hold counts and line numbers only."""

from __future__ import annotations

import asyncio

from prefect import task

from ris.config import EngineConfig
from ris.directory.download import local_copy
from ris.directory.importer import import_file
from ris.directory.importer import new_run_id as new_import_run
from ris.store.db import unit_of_work
from tasks.run_context import run_logger

SHOWN_REFUSALS = 20
__all__ = ["import_extraction", "new_import_run"]


@task(name="import-directory-extraction", task_run_name="import-directory-{kind}")
async def import_extraction(kind: str, source: str, run: str) -> dict:
    """Fetch (when an https address) and import one extraction: `persons` or `mailboxes`."""
    log = run_logger(__name__)
    folder = EngineConfig.from_env().data_dir / "directory"
    path = await asyncio.to_thread(local_copy, source, folder)
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
