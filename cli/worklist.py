"""`ris worklist`: bring patients, correspondents, exams and reports in from a JSON file."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from cli.acting import acting
from cli.common import fail, intake_limits, print_json
from ris.auth import roles
from ris.identity import vigilance
from ris.site.engine import EngineConfig
from ris.site.settings import IntakeLimits
from ris.store.db import in_unit_of_work, session_scope
from ris.store.transient import backoff_s, is_transient
from ris.worklist import loader as worklist

app = typer.Typer(help="Import worklists (format: docs/worklist.schema.json).")


@app.command()
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Worklist JSON file"),
    by: str | None = typer.Option(
        None, "--by", help="Who imports (RPPS or user id, audited); default: the `ris login` RPPS"
    ),
) -> None:
    """Load every good record; refuse bad ones one by one with the field and the reason. Records already
    stored with the same values are counted unchanged: loading a file again is harmless. Commits in short
    batches so that the live feeds keep being served."""
    by = acting(by, roles.WORKLIST_LOAD).rpps
    limits = intake_limits("the site's worklist limits")
    stop = threading.Event()
    try:
        with _first_ctrl_c_stops(stop):
            result = _load_to_the_end(file, by, stop, limits)
    except worklist.RecordRefused as exc:
        fail(str(exc))
    if result.refused:  # someone must look at each (the identity-vigilance worklist, rule 55)
        in_unit_of_work(lambda session: vigilance.refused_records(session, file.name, result.refused))
    typer.echo(f"loaded: {_counts(result.loaded)}")
    if any(result.unchanged.values()):
        typer.echo(f"unchanged: {_counts(result.unchanged)}")
    for line in result.updated:  # drafts and provisional reports that took the file's new values
        typer.echo(f"updated: {line}")
    for line in result.refused:
        typer.secho(f"refused: {line}", fg=typer.colors.YELLOW, err=True)
    if result.refused_count > len(result.refused):
        more = result.refused_count - len(result.refused)
        typer.secho(
            f"refused: {more} more records, not listed (site setting intake.max_refusals_listed)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if result.stopped:
        fail(
            f"the load stopped at {result.stopped}; committed: {result.which()}; "
            "load the same file again to finish (stored records count as unchanged)"
        )
    if result.refused_count:
        raise typer.Exit(2)


def _load_to_the_end(file: Path, by: str, stop: threading.Event, limits: IntakeLimits) -> worklist.LoadReport:
    """Load the file; when a transient database fault (a deadlock, a lost connection) stopped the load,
    load it again after a pause, as many times as a unit of work would run (EngineConfig.db_retry)."""
    policy = EngineConfig.from_env().db_retry
    attempt = 1
    while True:
        with session_scope() as session:
            result = worklist.load_file(session, file, actor=by, commit=True, stop=stop.is_set, limits=limits)
        if not is_transient(result.fault) or attempt >= policy.attempts:
            return result
        typer.secho(
            f"the load stopped at {result.stopped}; committed: {result.which()}; loading the file again "
            "(what was committed counts as unchanged)",
            fg=typer.colors.YELLOW,
            err=True,
        )
        time.sleep(backoff_s(attempt, policy.first_delay_s, policy.max_delay_s))
        attempt += 1


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
