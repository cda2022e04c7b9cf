"""`ris export` (RIS.PORT.01): the health-data history written as a documented, checkable folder, with a
progress bar; `ris import-export` re-reads such a folder and proves it complete."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session

from cli.acting import acting, by_option
from cli.common import fail, print_json, site_zone
from ris.auth import roles
from ris.export.schemas import ENTITIES
from ris.export.verify import ExportIncomplete, verify_export
from ris.export.writer import (
    ExportRefused,
    Scope,
    check_professional,
    count_scope,
    export_database,
    prepare_folder,
)
from ris.store.db import get_engine, require_current
from ris.store.models import utcnow


def _export(out: Path, since: dt.date | None, rpps: str | None) -> dict:
    zone = site_zone("`ris export --since`", engine_required=False) if since else "UTC"
    with Session(get_engine()) as session:
        scope = Scope(as_of=utcnow(), since=since, zone=zone, rpps=rpps)
        check_professional(session, scope)  # before the progress bar: a refusal is one line
        prepare_folder(out)
        totals = count_scope(session, scope)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        tasks = {entity: bar.add_task(entity, total=totals[entity]) for entity in ENTITIES}
        return export_database(
            out, since=since, zone=zone, rpps=rpps, progress=lambda entity, n: bar.advance(tasks[entity], n)
        )


ExportBy = by_option("Who exports")


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        out: Path = typer.Option(..., "--out", help="A new or empty folder to write the export into"),
        since: dt.datetime | None = typer.Option(
            None, formats=["%Y-%m-%d"], help="History depth: reports validated or changed since this day"
        ),
        rpps: str | None = typer.Option(
            None,
            "--rpps",
            help="RPPS: only the reports this professional produced (author, validator) or received "
            "(requester, copy)",
        ),
        by: str | None = ExportBy,
    ) -> None:
        """Portability export: every patient with its identity history, every report with its versions,
        documents (CDA, PDF), delivery timelines and the audit trail, as JSON Lines with a JSON Schema per
        file, a README and a manifest of counts and SHA-256; `--rpps` limits it to one professional's
        reports, their patients and the audit events about them (said in the manifest and the README)."""
        require_current()
        acting(by, roles.EXPORT)
        try:
            manifest = _export(out, since.date() if since else None, rpps)
        except ExportRefused as exc:
            fail(str(exc))
        counts = ", ".join(f"{n} {entity}" for entity, n in manifest["counts"].items())
        typer.echo(f"export written to {out}: {counts}")

    @app.command("import-export")
    def import_export(
        folder: Path = typer.Argument(..., help="The folder `ris export` wrote"),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON"),
    ) -> None:
        """Re-read an export and prove it complete: every file and its SHA-256, every line against its
        schema, every reference between files. Exit 1 with the problems found."""
        try:
            verified = verify_export(folder)
        except ExportIncomplete as exc:
            fail(f"export {folder} is not complete:\n{exc}")
        if as_json:
            print_json(
                {"folder": str(folder), "as_of": verified.manifest["as_of"], "counts": verified.counts}
            )
            return
        counts = ", ".join(f"{n} {entity}" for entity, n in verified.counts.items())
        typer.echo(f"export {folder} is complete ({verified.manifest['as_of']}): {counts}")
