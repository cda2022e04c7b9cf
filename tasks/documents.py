"""Building the PDF/A-1b and the CDA R2 N1 of a validated version, once.

The facts are checked where the report is loaded; the rendering and its PDF/A check run in the worker's
process pool (never in a thread beside the event loop, see ris.process_pool)."""

from __future__ import annotations

import asyncio

from prefect import task

from blocks.site import load_site_settings
from ris import documents
from ris.documents.ins_at_send import REBUILD_REASON
from ris.store import documents as stored
from ris.store.db import unit_of_work
from tasks.run_context import run_logger, store_retries


# Retried on a transient database fault only: a refused report (DocumentError) is refused again,
# identically, on every attempt.
@task(name="build-documents", task_run_name="build-documents-{report_id}-v{version}", **store_retries())
async def build_documents(report_id: str, version: int) -> dict[str, str]:
    """Build and store the documents of one version, or return the ones already stored (ids and hashes).

    Raises DocumentError (field and rule named, no health data) before anything is stored."""
    summary = await unit_of_work(stored.stored_summary, report_id, version)
    if summary is not None:
        return summary
    built = await documents.render_version(report_id, version, await load_site_settings())
    return await asyncio.to_thread(stored.keep, report_id, version, built)


@task(name="rebuild-documents", task_run_name="rebuild-documents-{report_id}-v{version}", **store_retries())
async def rebuild_documents(report_id: str, version: int, reason: str) -> dict[str, str]:
    """Build the version's documents again from the identity as it is now (without the INS of an identity
    no longer qualified) and keep them in place of the stored ones, which never left."""
    built = await documents.render_version(report_id, version, await load_site_settings())
    return await asyncio.to_thread(stored.rebuilt, report_id, version, built, reason)


async def rebuild_without_ins(report_id: str, version: int, what: str) -> None:
    """INS rule 28 at send time: the identity is no longer qualified and the stored CDA carries its INS
    (`ris.documents.ins_at_send`), so the documents are rebuilt without it before `what` leaves."""
    run_logger(__name__).warning("%s: identity no longer qualified, documents rebuilt without the INS", what)
    await rebuild_documents(report_id, version, REBUILD_REASON)
