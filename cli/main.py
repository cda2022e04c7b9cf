"""The `ris` console command. Errors of the environment (database not migrated or unreachable, Prefect
server down, a block never saved) end in one line saying what is wrong and what fixes it, never a
traceback."""

from __future__ import annotations

import sys

import httpx
import sqlalchemy as sa
import typer
from prefect.settings import PREFECT_API_URL

from blocks import BlockNotSaved
from cli import (
    audit,
    configure,
    context,
    dashboard,
    db,
    delivery,
    demo,
    directory,
    document,
    env,
    export,
    hl7,
    identity,
    login,
    mss,
    report,
    server,
    user,
    worker,
    worklist,
)
from cli.api_auth import explain_refusal
from ris.site.engine import EngineConfig, EngineConfigError
from ris.store.db import DatabaseNotReady
from ris.store.transient import TransientDatabaseError

app = typer.Typer(
    name="ris",
    help="Radiology report lifecycle engine (Ségur DSR Radiologie vague 1) on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(worklist.app, name="worklist")
app.add_typer(report.app, name="report")
app.add_typer(delivery.app, name="delivery")
app.add_typer(document.app, name="document")
app.add_typer(identity.app, name="identity")
app.add_typer(hl7.app, name="hl7")
demo.register(app)
worker.register(app)
env.register(app)
app.add_typer(server.app, name="server")
app.add_typer(directory.app, name="directory")
login.register(app)
app.add_typer(audit.app, name="audit")
configure.register(app)
dashboard.register(app)
export.register(app)
app.add_typer(mss.app, name="mss")
context.register(app)
app.add_typer(user.app, name="user")

NOT_READY = 3


def explain(exc: BaseException) -> str | None:
    """One line for an error of the environment; None for anything else (a bug shows its traceback)."""
    if isinstance(exc, DatabaseNotReady | TransientDatabaseError | EngineConfigError | BlockNotSaved):
        return str(exc)
    where = EngineConfig.from_env().database_url.split("@")[-1]
    if isinstance(exc, sa.exc.OperationalError | sa.exc.ProgrammingError):
        text = str(exc.orig)
        if "no such table" in text or "does not exist" in text:
            return f"the engine database ({where}) is not migrated: run `ris db upgrade`"
        return f"the engine database ({where}) cannot be used: {text.splitlines()[0]}"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        api = PREFECT_API_URL.value() or "none set"
        return f"the engine's Prefect server ({api}) does not answer: start the engine with `ris up`"
    return explain_refusal(exc)


def main() -> None:
    try:
        app()
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        sys.exit(NOT_READY)


if __name__ == "__main__":
    main()
