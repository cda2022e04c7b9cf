"""`ris mss`: the MSSanté mails the engine sends itself: a report sent by hand to a professional of the
user's choice (RIS.MSS.20), and the mails as they would leave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from blocks import BlockNotSaved
from blocks.certificates import load_certificate_pool
from blocks.mssante import load_mssante_operator
from blocks.site import load_site_settings
from cli.acting import acting, by_option
from cli.api_auth import explain_refusal
from cli.common import fail, require_answering_api, require_engine_api
from deployments.runs import start_mss_send
from ris.auth import roles
from ris.auth.certificates import personal_mailboxes
from ris.channels.mssante import deliver, manual
from ris.channels.mssante.message import PATIENT_DOMAIN
from ris.channels.mssante.sender import SenderUnavailable
from ris.documents import DocumentError
from ris.lifecycle import routing
from ris.lifecycle.distribution import version_action
from ris.store import deliveries
from ris.store.db import in_unit_of_work, session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus, utcnow
from ris.store.reports import NotFound, get_report, load_bundle
from ris.text_rules import line_problem

app = typer.Typer(
    help="MSSanté sent by the engine: a report sent to a professional, the mails as they leave."
)


@app.command("send")
def send_command(
    report_id: str = typer.Argument(..., metavar="ID", help="The validated report"),
    to: str = typer.Option(..., "--to", help="The professional's MSSanté address"),
    version: int | None = typer.Option(
        None, "--version", "-v", min=1, help="The version meant (default: the current one)"
    ),
    unlisted: bool = typer.Option(
        False,
        "--unlisted",
        help="The imported directory does not list the address (unpublished): send anyway",
    ),
    by: str | None = by_option("who sends"),
) -> None:
    """Send a validated report to a professional of your choice over MSSanté (RIS.MSS.20): one delivery,
    sent by the engine through the site's MSSanté operator (the `mss-send` deployment), with its receipts,
    retry (`ris delivery retry`) and audit. Asked again for the same address, nothing goes twice."""
    actor = acting(by, roles.REPORT_SEND).rpps
    require_answering_api("sending a report by MSSanté")
    try:
        asyncio.run(load_mssante_operator())
    except BlockNotSaved as exc:
        fail(f"a manual send goes through the site's MSSanté operator: {exc}")
    try:
        sent = in_unit_of_work(
            lambda session: manual.request(
                session, report_id, to=to, version=version, actor=actor, unlisted=unlisted
            )
        )
    except (NotFound, manual.ManualSendRefused) as exc:
        fail(str(exc))
    what = f"report {sent.report_id} v{sent.version} to {sent.address}"
    if sent.listed:
        typer.echo(f"{sent.address}: {sent.listed} in the directory")
    if sent.status != DeliveryStatus.pending.value:
        typer.echo(f"{what}: delivery {sent.delivery_id} is {sent.status} already, nothing sent again")
        return
    try:
        run_id = asyncio.run(start_mss_send(sent.delivery_id, sent.report_id, sent.version))
    except Exception as exc:  # the API refused, or the deployment is not served
        fail(
            explain_refusal(exc)
            or f"the send could not start ({exc}); start the engine with `ris up`, then run this again",
            code=3,
        )
    typer.echo(f"mss-send run {run_id} started: delivery {sent.delivery_id}, {what}")


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
    if "@" not in to or line_problem(to):
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
            blocked = routing.withheld_because(load_bundle(session, report_id, number), channel)
            mailboxes = personal_mailboxes(asyncio.run(load_certificate_pool()))
            message = deliver.render(session, row, settings, now=utcnow(), to=to, mailboxes=mailboxes)
    except (NotFound, DocumentError, deliver.MssRuleError, SenderUnavailable) as exc:
        fail(str(exc))
    except ValueError as exc:  # a stored text the mail's headers cannot carry (a CR in the exam label...)
        fail(f"report {report_id}: the mail cannot be built from what is stored ({exc})")
    try:
        out.write_bytes(message.as_bytes())
    except OSError as exc:
        fail(f"--out {out}: cannot be written ({exc.strerror or exc})")
    typer.echo(f"{out}: {message['Message-ID']} to {to} ({chosen}), {out.stat().st_size} bytes")
    if blocked:
        typer.secho(f"warning: would not be sent now: {blocked}", fg=typer.colors.YELLOW, err=True)
