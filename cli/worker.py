"""`ris worker`: one engine worker, for a site that spreads its runs over several machines."""

from __future__ import annotations

import typer

from cli.common import require_answering_api
from cli.demo import run_until_stopped
from deployments import WORK_POOL
from deployments.worker import DEFAULT_LIMIT, RisWorker
from ris.store import db


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        pool: str = typer.Option(WORK_POOL, "--pool", help="Work pool to take flow runs from"),
        limit: int = typer.Option(DEFAULT_LIMIT, min=1, help="Flow runs in flight at once in this worker"),
        name: str | None = typer.Option(None, help="Worker name shown in the UI (default: host and pid)"),
    ) -> None:
        """Run the engine's flow runs of the pool in this process until Ctrl-C: the Prefect API is
        PREFECT_API_URL (any API server of the site) with its auth string PREFECT_API_AUTH_STRING, the
        engine database RIS_DATABASE_URL (all three shared by every worker of the site)."""
        db.require_current()
        require_answering_api("a worker")
        engine_worker = RisWorker(pool, limit=limit, name=name)
        run_until_stopped(engine_worker.start(printer=typer.echo))
