"""`ris delivery`: see failed deliveries and retry them, one report or a filtered batch."""

from __future__ import annotations

import asyncio

import typer

from cli.common import fail, print_json
from deployments.runs import start_retry
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel

app = typer.Typer(help="Failed deliveries and their retry by an administrator.")


@app.command("failed")
def list_failed(
    channel: Channel | None = typer.Option(None, help="Only this channel"),
    report_id: str | None = typer.Option(None, "--report", help="Only this report"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every failed delivery with its reason."""
    with session_scope() as session:
        rows = [
            {
                "report": d.report_id,
                "version": d.version,
                "channel": d.channel.value,
                "action": d.action,
                "delivery": d.id,
                "attempts": d.attempts,
                "reason": d.reason,
                "at": d.updated_at.isoformat(),
            }
            for d in deliveries.failed(session, channel, report_id)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        where = f"{row['report']} v{row['version']} {row['channel']:<12} delivery {row['delivery']}"
        typer.echo(f"{where}: {row['reason']}")
    typer.echo(f"{len(rows)} failed")


async def _start_retries(targets: list[tuple[str, int, str]]) -> list[str]:
    return [await start_retry(report_id, version, action) for report_id, version, action in targets]


@app.command()
def retry(
    report_id: str | None = typer.Argument(None, help="The report whose failed HL7 delivery to send again"),
    all_failed: bool = typer.Option(False, "--all-failed", help="Every failed HL7 delivery (batch)"),
) -> None:
    """Send a failed HL7 delivery again with the same MSH-10 (the PFI files it once). HL7 is the channel
    this engine sends itself; the copies the PFI relays follow it back to pending."""
    if bool(report_id) == all_failed:
        fail("give one REPORT_ID, or --all-failed for the batch")
    with session_scope() as session:
        rows = deliveries.failed(session, Channel.hl7, report_id)
        targets = sorted({(d.report_id, d.version, d.action) for d in rows})
    if not targets:
        fail(f"no failed HL7 delivery{' for report ' + report_id if report_id else ''}")
    try:
        run_ids = asyncio.run(_start_retries(targets))
    except Exception as exc:  # the API is down or the deployment is not served
        fail(f"the retry could not start ({exc}); start the engine with `ris up`", code=3)
    for (rid, version, action), run_id in zip(targets, run_ids, strict=True):
        typer.echo(f"retry run {run_id} started: retry-hl7-{rid}-v{version} ({action})")
