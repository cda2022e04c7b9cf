"""`ris db`: the engine's database."""

from __future__ import annotations

import typer

from ris.config import EngineConfig
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
