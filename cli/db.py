"""`ris db`: the engine's database."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail
from ris.site.engine import EngineConfig
from ris.store import db

app = typer.Typer(help="The engine's database (SQLite file by default, RIS_DATABASE_URL for PostgreSQL).")


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target migration revision")) -> None:
    """Create or migrate the schema to the latest revision."""
    url = EngineConfig.from_env().database_url
    db.upgrade(url, revision)
    typer.echo(
        f"database at revision {revision}: {db.get_engine(url).url.render_as_string(hide_password=True)}"
    )


@app.command()
def backup(
    destination: Path = typer.Argument(..., help="File to write: a SQLite database, or a pg_dump archive"),
) -> None:
    """A consistent copy of the engine database while the engine runs (SQLite online backup API, or
    `pg_dump --format=custom` for PostgreSQL). The copy holds health data: it is created 0600."""
    url = EngineConfig.from_env().database_url
    if destination.exists():
        fail(f"{destination} already exists: choose a new file (a backup never overwrites)")
    if not destination.parent.is_dir():
        fail(f"{destination.parent} is not a folder")
    db.require_current(url)
    try:
        pages = db.backup(url, destination)
    except db.BackupFailed as exc:
        fail(str(exc))
    typer.echo(f"backup written to {destination}" + (f" ({pages} pages)" if pages else ""))
