"""`ris context-url ID --target dmp|pacs`: the outgoing contextual call (RIS.DMP.04–05, RIS.AC.01) for the
patient a report id or an IPP names, with the full INS and the strict traits, for a qualified identity only.
The address is printed to the professional who asked, never logged; the call is audited without it."""

from __future__ import annotations

import asyncio

import typer

from blocks.site import load_site_settings
from cli.common import fail, require_engine_api
from ris import context_calls
from ris.auth.actor import ActorRefused, acting_professional
from ris.auth.settings import AuthConfigError
from ris.auth.tokens import ProviderUnreachable, TokenRejected
from ris.config import EngineConfig
from ris.store.db import session_scope


def context_url(
    some_id: str = typer.Argument(..., metavar="ID", help="A report id or a patient IPP"),
    target: str = typer.Option(..., "--target", help="dmp (the DMP web PS) or pacs (the site's viewer)"),
    by: str | None = typer.Option(None, "--by", help="RPPS of the professional, when not logged in"),
) -> None:
    """Print the contextual call's address (it carries the INS: for your eyes only)."""
    if target not in context_calls.TARGETS:
        fail(f"--target {target!r}: one of {', '.join(context_calls.TARGETS)}")
    try:
        rpps = acting_professional(by, EngineConfig.from_env().data_dir).rpps
    except (ActorRefused, AuthConfigError, TokenRejected, ProviderUnreachable) as exc:
        fail(str(exc))
    require_engine_api("a contextual call")  # the targets are site settings
    settings = asyncio.run(load_site_settings())
    with session_scope() as session:
        try:
            call = context_calls.build(session, some_id, target, settings.context_calls, ps_rpps=rpps)
        except context_calls.ContextCallRefused as exc:
            fail(str(exc))
    typer.echo(call.url)


def register(app: typer.Typer) -> None:
    app.command("context-url")(context_url)
