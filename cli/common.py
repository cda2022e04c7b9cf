"""Helpers shared by the CLI commands: printing errors people understand, exiting with a status."""

from __future__ import annotations

import asyncio
import json
from typing import Any, NoReturn

import httpx
import typer
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

from blocks import BlockNotSaved
from blocks.site import load_site_settings
from cli.api_auth import authorization, refused_line
from ris.site.settings import IntakeLimits, SiteSettings


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
    auth = PREFECT_API_AUTH_STRING.value()
    try:
        httpx.get(f"{api}/health", timeout=5).raise_for_status()
        accepted = httpx.get(f"{api}/hello", headers=authorization(auth), timeout=5).status_code != 401
    except httpx.HTTPError as exc:
        fail(
            f"the engine's Prefect server ({api}) does not answer ({type(exc).__name__}): start the engine "
            "with `ris up` or set PREFECT_API_URL to its API",
            code=3,
        )
    if not accepted:  # the health check needs no credential: ask something that does
        fail(refused_line(api, sent=bool(auth)), code=3)


def site_zone(what: str, *, engine_required: bool = True) -> str:
    """The site's time zone, in which the days people type (`--since 2026-12-05`) begin and end: from the
    running engine's site settings; without an engine, the default zone when `engine_required` is false."""
    if not PREFECT_API_URL.value() and not engine_required:
        zone = SiteSettings().timezone
        typer.echo(f"{what}: days in {zone}, the default zone (no running engine to read the site's from)")
        return zone
    require_engine_api(what)
    return asyncio.run(load_site_settings()).timezone


def intake_limits(what: str) -> IntakeLimits:
    """The site's maxima for operators' files (`intake`), from the running engine's site settings; the
    defaults when no engine runs on this data folder or none were saved."""
    if not PREFECT_API_URL.value():
        return IntakeLimits()
    require_answering_api(what)
    try:
        return asyncio.run(load_site_settings()).intake
    except BlockNotSaved:
        return IntakeLimits()
