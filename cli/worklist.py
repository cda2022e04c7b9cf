"""`ris worklist`: bring patients, correspondents, exams and reports in from a JSON file."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail, print_json
from ris import worklist
from ris.store.db import session_scope

app = typer.Typer(help="Import worklists (format: docs/worklist.schema.json).")


@app.command()
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Worklist JSON file"),
    by: str = typer.Option("worklist", help="Who imports (recorded in the audit trail)"),
) -> None:
    """Load every good record; refuse bad ones one by one with the field and the reason."""
    try:
        with session_scope() as session:
            result = worklist.load_file(session, file, actor=by)
    except worklist.RecordRefused as exc:
        fail(str(exc))
    loaded = ", ".join(f"{n} {section}" for section, n in result.loaded.items())
    typer.echo(f"loaded: {loaded}")
    for line in result.refused:
        typer.secho(f"refused: {line}", fg=typer.colors.YELLOW, err=True)
    if result.refused:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the worklist format (the one in docs/worklist.schema.json)."""
    print_json(worklist.json_schema())
