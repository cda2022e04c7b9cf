"""`ris worklist`: bring patients, correspondents, exams and reports in from a JSON file."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
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
    """Load every good record; refuse bad ones one by one with the field and the reason. Records already
    stored with the same values are counted unchanged: loading a file again is harmless. Commits in short
    batches so that the live feeds keep being served."""
    stop = threading.Event()
    try:
        with _first_ctrl_c_stops(stop), session_scope() as session:
            result = worklist.load_file(session, file, actor=by, commit=True, stop=stop.is_set)
    except worklist.RecordRefused as exc:
        fail(str(exc))
    typer.echo(f"loaded: {_counts(result.loaded)}")
    if any(result.unchanged.values()):
        typer.echo(f"unchanged: {_counts(result.unchanged)}")
    for line in result.refused:
        typer.secho(f"refused: {line}", fg=typer.colors.YELLOW, err=True)
    if result.stopped:
        fail(
            f"the load stopped at {result.stopped}; committed: {result.which()}; "
            "load the same file again to finish (stored records count as unchanged)"
        )
    if result.refused:
        raise typer.Exit(2)


@contextlib.contextmanager
def _first_ctrl_c_stops(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C lets the load commit what it stored and stop between two records; a second one
    interrupts at once (the batch in progress is then rolled back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def first(*_args: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _counts(per_section: dict[str, int]) -> str:
    return ", ".join(f"{n} {section}" for section, n in per_section.items())


@app.command()
def schema() -> None:
    """Print the JSON Schema of the worklist format (the one in docs/worklist.schema.json)."""
    print_json(worklist.json_schema())
