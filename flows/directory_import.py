"""directory-import: the Annuaire Santé extractions imported on the schedule of prefect.yaml (RIS.ANN.04:
the site sets the frequency there or in the Prefect UI). The professionals first, then the MSSanté
mailboxes, which fill the addresses the correspondents lack. The result holds counts only (None for an
extraction out of the worker's reach: the run completes, its log says how to give it a source)."""

from __future__ import annotations

from prefect import flow

from flows.names import DIRECTORY_IMPORT_FLOW
from tasks.directory import import_extraction, new_import_run


@flow(name=DIRECTORY_IMPORT_FLOW, flow_run_name="directory-import")
async def directory_import(persons: str, mailboxes: str | None = None) -> dict:
    """Import `persons` (PS_LibreAcces_Personne_activite) and `mailboxes` (MSSanté addresses): a path on
    the worker or the https address of the published extraction."""
    run = new_import_run()
    result = {"persons": await import_extraction("persons", persons, run)}
    if mailboxes and result["persons"] is not None:  # None: out of reach, said once, nothing imported
        result["mailboxes"] = await import_extraction("mailboxes", mailboxes, run)
    return result
