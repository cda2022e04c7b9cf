"""`ris hl7`: print the ORU / MDM message of a report as the PFI would receive it; run the ZAM listener."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import typer

from blocks.pfi import load_pfi_endpoint
from blocks.site import load_site_settings
from cli.common import fail, require_engine_api
from cli.receipt_events import emit_applied
from ris.channels.hl7 import publish
from ris.channels.hl7.listener import ZamListener
from ris.channels.hl7.message import Hl7RuleError, render
from ris.channels.hl7.validation import Hl7ValidationError, strict_validate
from ris.hl7v2.ack_writer import Party
from ris.site.listeners import ListenerSettingsError
from ris.store.db import session_scope
from ris.store.reports import NotFound, get_report

app = typer.Typer(help="HL7 v2 to the integration platform (PFI): messages and ZAM receipts.")


@app.command("render")
def render_command(
    report_id: str,
    version: int = typer.Option(None, "--version", "-v", help="Validated version (default: the current one)"),
    message_type: str = typer.Option(None, "--type", help="ORU or MDM (default: the site setting)"),
    action: str = typer.Option("initial", "--action", help="initial, replace or delete"),
    check: bool = typer.Option(
        False, "--check", help="Also validate with hl7apy STRICT (payload, PRT aside)"
    ),
) -> None:
    """Print the message, CDA payload included, one segment per line (the wire uses CR)."""
    if message_type is not None and message_type.upper() not in ("ORU", "MDM"):
        fail(f"--type {message_type!r}: ORU or MDM")
    require_engine_api("rendering a message")
    settings = asyncio.run(load_site_settings())
    if message_type is not None:
        kind: Literal["ORU", "MDM"] = "ORU" if message_type.upper() == "ORU" else "MDM"
        settings.hl7.message_type = kind
    try:
        with session_scope() as session:
            number = version if version is not None else get_report(session, report_id).version
            rendered = render(publish.preview(session, report_id, number, action), settings)
        if check:
            strict_validate(rendered.er7)
    except (Hl7RuleError, NotFound, Hl7ValidationError) as exc:
        fail(str(exc))
    typer.echo("\n".join(rendered.er7.split("\r")))
    if rendered.matrix_warning:
        typer.secho(f"warning: {rendered.matrix_warning}", fg=typer.colors.YELLOW, err=True)


@app.command()
def listen(
    host: str = typer.Option(None, help="Interface (default: the PFI block's receipt_host)"),
    port: int = typer.Option(None, help="Port (default: the PFI block's receipt_port)"),
) -> None:
    """Receive ZAM Z01 / Z02 / Z03 from the PFI and update the deliveries, until interrupted. Only the PFI
    is heard (the PFI block's application and facility, over its address or its certificate) unless the
    site setting `listeners.zam.allow` says otherwise; anyone else gets AR."""

    async def serve() -> None:
        endpoint = await load_pfi_endpoint()
        settings = await load_site_settings()
        me = Party(settings.hl7.sending_application, settings.facility.finess_geo)
        try:
            options = settings.listeners.for_zam(endpoint.peer())  # limits, TLS, allowlist, charset
        except ListenerSettingsError as exc:
            fail(str(exc))
        listener = ZamListener(
            host or endpoint.receipt_host,
            endpoint.receipt_port if port is None else port,
            me=me,
            tz=settings.timezone,
            on_outcome=emit_applied,
            **options,
        )
        async with listener:
            typer.echo(f"ZAM listener on {listener.server.host}:{listener.port}")
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
