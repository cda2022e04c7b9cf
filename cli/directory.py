"""`ris directory`: import the Annuaire Santé extractions, search a correspondent's MSSanté address, create a
correspondent from the directory (RIS.ANN.01–05)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlmodel import Session

from cli.acting import acting, by_option
from cli.common import fail, print_json
from ris.auth import roles
from ris.directory import referenced, search
from ris.directory.extraction import ExtractionRefused, open_extraction
from ris.directory.importer import ImportSummary, import_mailboxes, import_persons, new_run_id
from ris.store.db import in_unit_of_work, session_scope

app = typer.Typer(help="Annuaire Santé: import the public extractions, search MSSanté addresses.")
SHOWN_REFUSALS = 20
AdminBy = by_option("The administrator")


def _run(importer, path: Path, label: str, run: str) -> ImportSummary:
    def work(session: Session) -> ImportSummary:  # run again after a deadlock: the file from its start
        with (
            open_extraction(path) as (stream, size),
            typer.progressbar(length=size, label=label, file=sys.stderr) as bar,
        ):
            return importer(session, stream, what=path.name, run=run, progress=bar.update)

    return in_unit_of_work(work)


def _print(summary: ImportSummary) -> None:
    typer.echo(
        f"{summary.what}: {summary.lines} lines; created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, refused {summary.refused_count}"
        + (f", skipped {summary.skipped} (no RPPS)" if summary.skipped else "")
        + (f", withdrawn {summary.withdrawn}" if summary.withdrawn else "")
        + f"; correspondents updated {summary.correspondents_updated}"
    )
    for number, reason in summary.refused[:SHOWN_REFUSALS]:
        typer.echo(f"  line {number}: {reason}")
    if summary.refused_count > SHOWN_REFUSALS:
        typer.echo(
            f"  ... and {summary.refused_count - SHOWN_REFUSALS} more refused lines (--json lists them)"
        )


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="PS_LibreAcces_Personne_activite (.txt, or the .zip as published)"),
    mss: Path | None = typer.Option(None, "--mss", help="The MSSanté address extraction (.txt or .zip)"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary"),
    by: str | None = AdminBy,
) -> None:
    """Import the extractions (creation and update), streaming: any size, flat memory."""
    acting(by, roles.CONFIGURE)
    run = new_run_id()
    try:
        summaries = [_run(import_persons, file, "professionals", run)]
        if mss is not None:
            summaries.append(_run(import_mailboxes, mss, "MSSanté addresses", run))
    except ExtractionRefused as exc:
        fail(str(exc))
    if as_json:
        print_json([s.as_dict() for s in summaries])
    else:
        for summary in summaries:
            _print(summary)
    if any(s.refused_count for s in summaries):
        raise typer.Exit(2)  # imported, but some lines were refused: a scheduler should see it


@app.command()
def find(
    rpps: str | None = typer.Option(None, "--rpps", help="RPPS number (11 digits)"),
    name: str | None = typer.Option(None, "--name", help="Name (exercise name), or its beginning"),
    given: str | None = typer.Option(None, "--given", help="Given name, or its beginning"),
    city: str | None = typer.Option(None, "--city", help="City or postal code of a place of practice"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Search a correspondent: identity, profession, structures and MSSanté addresses."""
    try:
        with session_scope() as session:
            found = search.find(session, rpps=rpps, name=name, given=given, city=city)
    except search.SearchRefused as exc:
        fail(str(exc))
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("no professional found in the imported directory")
    for person in found:
        specialty = person["specialty"]["label"] or person["profession"]["label"] or ""
        typer.echo(f"{person['rpps']}  {person['family']} {person['given'] or ''}  {specialty}")
        for structure in person["structures"]:
            where = f"{structure.get('postal_code', '')} {structure.get('city', '')}"
            typer.echo(f"    {structure.get('name', '')}, {where}")
        for box in person["mss_addresses"]:
            typer.echo(f"    MSSanté {box['kind']}: {box['address']}")


@app.command()
def adopt(
    rpps: str = typer.Argument(..., help="RPPS number of the professional"), by: str | None = AdminBy
) -> None:
    """Create the RIS correspondent (or user) of this RPPS from the directory, or bring it up to date."""
    acting(by, roles.CONFIGURE)
    try:
        row, created = in_unit_of_work(lambda session: referenced.adopt(session, rpps))
    except referenced.NotInDirectory as exc:
        fail(str(exc))
    line = f"correspondent {rpps} {'created' if created else 'updated'}: {row.family} {row.given or ''}"
    address = row.mss_address
    typer.echo(line + (f", MSSanté {address}" if address else ", no MSSanté address"))
