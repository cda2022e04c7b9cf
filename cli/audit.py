"""`ris audit`: the audit trail (append-only in the database, hash-chained)."""

from __future__ import annotations

import typer
from sqlmodel import Session

from cli.common import fail
from ris.store import audit
from ris.store.db import get_engine, require_current

app = typer.Typer(help="The audit trail: append-only, each entry chained to the one before by a hash.")

SHOWN = 50


@app.command()
def verify() -> None:
    """Walk the whole trail: exit 0 when every entry is as written and in place, 1 naming each one that
    was rewritten, deleted, inserted or moved. Keep the printed head off this machine: a later run that
    does not reach it means the trail was rebuilt."""
    require_current()
    with Session(get_engine()) as session:  # a read: no write lock on SQLite
        result = audit.verify(session)
    for problem in result.problems[:SHOWN]:
        typer.echo(problem, err=True)
    if result.problems:
        more = len(result.problems) - SHOWN
        fail(
            f"audit trail broken: {len(result.problems)} problem(s) in {result.entries} entries"
            + (f" ({more} not shown)" if more > 0 else ""),
            code=1,
        )
    typer.echo(f"audit trail intact: {result.entries} entries, head {result.head or '(empty)'}")
