"""Helpers shared by the CLI commands: printing errors people understand, exiting with a status."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import httpx
import typer
from prefect.settings import PREFECT_API_URL


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def require_engine_api(what: str) -> None:
    """Site settings live on the engine's Prefect server: without one, refuse rather than use defaults
    (documents built from the wrong facility data would be stored for good)."""
    if not PREFECT_API_URL.value():
        fail(
            f"{what} needs the site settings saved on the engine's Prefect server: start `ris up` on this "
            "data folder (RIS_DATA_DIR) or set PREFECT_API_URL"
        )


def require_answering_api(what: str) -> None:
    """One quick look at the Prefect server before a long-running command starts: the client's own
    retries would otherwise wait minutes on a server that is not there."""
    require_engine_api(what)
    api = str(PREFECT_API_URL.value()).rstrip("/")
    try:
        httpx.get(f"{api}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        fail(
            f"the engine's Prefect server ({api}) does not answer ({type(exc).__name__}): start the engine "
            "with `ris up` or set PREFECT_API_URL to its API",
            code=3,
        )
