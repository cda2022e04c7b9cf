"""`ris mss`: the MSSanté mails the engine sends itself on the direct route."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from blocks.site import load_site_settings
from cli.common import fail, require_engine_api
from ris import routing
from ris.channels.mssante import deliver
from ris.channels.mssante.message import PATIENT_DOMAIN
from ris.distribution import version_action
from ris.documents import DocumentError
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus, utcnow
from ris.store.reports import NotFound, get_report, load_bundle

app = typer.Typer(help="MSSanté sent by the engine (direct route): the mails as they would leave.")
ACTIONS = ("initial", "replace", "release", "delete")


@app.command("render")
def render_command(
    report_id: str,
    to: str = typer.Option(..., "--to", help="Recipient address (…@patient.mssante.fr: the patient's mail)"),
    out: Path = typer.Option(..., "--out", help="Where to write the .eml file"),
    version: int = typer.Option(None, "--version", "-v", help="Validated version (default: the current one)"),
    action: str = typer.Option(
        None, "--action", help="initial, replace, release or delete (default: the version's)"
    ),
) -> None:
    """Write the mail that would be sent to ADDRESS for this report, without sending it. The Message-ID is
    the planned delivery's when there is one, else a preview id."""
    if "@" not in to:
        fail(f"--to {to!r}: must be a mail address")
    if action is not None and action not in ACTIONS:
        fail(f"--action {action!r}: must be one of {', '.join(ACTIONS)}")
    require_engine_api("rendering a mail")
    settings = asyncio.run(load_site_settings())
    channel = Channel.mss_patient if to.lower().endswith("@" + PATIENT_DOMAIN) else Channel.mss_ps
    try:
        with session_scope() as session:
            number = version if version is not None else get_report(session, report_id).version
            if number < 1:
                fail(f"report {report_id}: not validated yet, nothing would be sent")
            chosen = action or version_action(number)
            planned = [
                r
                for r in deliveries.for_version(session, report_id, number)
                if r.channel is channel and r.action == chosen and r.route == "direct"
            ]
            row = next((r for r in planned if r.recipient in (to, routing.PATIENT)), None)
            row = row or Delivery(
                report_id=report_id,
                version=number,
                action=chosen,
                channel=channel,
                recipient=to,
                route="direct",
                status=DeliveryStatus.pending,
                idempotency_key=f"preview-{report_id}-v{number}",
            )
            blocked = routing.gate(load_bundle(session, report_id, number), channel)
            message = deliver.render(session, row, settings, now=utcnow(), to=to)
    except (NotFound, DocumentError, deliver.MssRuleError) as exc:
        fail(str(exc))
    out.write_bytes(message.as_bytes())
    typer.echo(f"{out}: {message['Message-ID']} to {to} ({chosen}), {out.stat().st_size} bytes")
    if blocked:
        typer.secho(f"warning: would not be sent now: {blocked}", fg=typer.colors.YELLOW, err=True)
