"""`ris up` and `ris demo`: the single-box mode, and a sample worklist driven through the lifecycle."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from prefect.client.orchestration import get_client
from prefect.exceptions import TerminationSignal
from sqlmodel import select

from cli.common import fail
from cli.single_box import SingleBox
from deployments import WORK_POOL
from deployments.runs import start_announcement, start_lifecycle, start_mss_receipts
from ris.auth import demo_users
from ris.directory.importer import ImportSummary, import_mailboxes, import_persons, new_run_id
from ris.directory.synthetic import SAMPLE_MAILBOXES, SAMPLE_PERSONS
from ris.lifecycle import reports
from ris.operations.demo import CORRECTION, follow_ups, sample_worklist, validator_for
from ris.operations.summary import report_summary
from ris.site.engine import EngineConfig
from ris.site.listeners import ListenerSettingsError
from ris.store.db import session_scope
from ris.store.models import Delivery, DeliveryStatus, Report
from ris.worklist import loader as worklist

CHANNELS = ("dmp", "mss-ps", "mss-patient", "hl7")
T = TypeVar("T")


def run_until_stopped(work: Coroutine[Any, Any, T]) -> T | None:
    """Run `work` until it ends or until Ctrl-C / SIGTERM, which cancel it so that everything it started
    is stopped cleanly (the `async with` blocks unwind). None when stopped by a signal."""

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await work

    try:
        return asyncio.run(main())
    except (asyncio.CancelledError, TerminationSignal):
        # TerminationSignal: a SIGTERM while the engine worker runs a flow in this process, whose engine holds
        # SIGTERM for the run and raises it wherever the loop is; asyncio.run has cancelled and unwound
        # `work` before it got here, as for the cancel of our own handler.
        typer.echo("stopped")
        return None


async def _wait_forever() -> None:
    typer.echo("Press Ctrl-C to stop.")
    await asyncio.Event().wait()


def _print_endpoints(box: SingleBox) -> None:
    ends = box.endpoints
    typer.echo(f"Prefect UI:        {ends.ui_url}")
    typer.echo(f"Prefect API:       {ends.api_url}")
    typer.echo(f"UI sign-in:        {ends.sign_in}")
    typer.echo(f"engine worker:     {box.worker.name} (work pool {WORK_POOL})")
    typer.echo(f"ZAM listener:      {ends.zam}   (receipts from the PFI)")
    typer.echo(f"PAM-FR listener:   {ends.pam}   (identity: PID of PAM-FR ADT, ORM, OMI, SIU)")
    if ends.pfi:
        typer.echo(f"sandbox PFI:       {ends.pfi}")
        typer.echo(f"sandbox INSi:      {ends.insi}")
        typer.echo(f"sandbox SMTP:      {ends.smtp}   (the site's mail relay, STARTTLS)")
        typer.echo(
            f"sandbox MSSanté:   {ends.mss}   (operator: STARTTLS, client certificate; route {box.routes})"
        )
        typer.echo(f"sandbox DMP:       {ends.dmp}   (XDS.b ITI-41, mutual TLS, VIHF; route {box.routes})")
    typer.echo(f"engine database:   {EngineConfig.from_env().database_url}")
    for missing in box.missing:
        typer.secho(f"not configured:    {missing}", fg=typer.colors.YELLOW)


async def _up(data_dir: Path, prefect_port: int, sandbox: bool) -> None:
    url = EngineConfig.from_env().database_url
    async with SingleBox(data_dir, url, prefect_port=prefect_port, sandbox=sandbox) as box:
        _print_endpoints(box)
        if caught_up := box.worker.caught_up:
            typer.echo(f"{len(caught_up)} reports validated while the engine was down: their runs started")
        await _wait_forever()


async def wait_for_runs(run_ids: list[str], timeout: float) -> dict[str, str]:
    states: dict[str, str] = {}
    async with get_client() as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for run_id in run_ids:
                run = await client.read_flow_run(run_id)
                states[run_id] = run.state.name if run.state else "Unknown"
                if run.state and not run.state.is_final():
                    break
            else:
                return states
            await asyncio.sleep(1)
    return states


async def wait_for_receipts(timeout: float, direct: bool = False) -> None:
    """Receipts (ZAM) arrive after the ACK: wait until no relayed delivery is still only 'sent'. On the
    direct route, the DSN / MDN of the engine's own mails are read from the IMAP mailbox meanwhile: a run
    of the `mss-receipts` deployment on the engine worker, as its schedule does every few minutes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if direct:
            await wait_for_runs([await start_mss_receipts()], timeout=max(deadline - loop.time(), 0))
        with session_scope() as session:
            waiting = session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.sent)).first()
        if waiting is None:
            return
        await asyncio.sleep(0.5)


async def validate_sample(data: dict[str, Any]) -> list[str]:
    """Validate every report of a sample worklist but the provisional ones (they never leave the RIS,
    RIS.CRR.04) and start their lifecycle runs; returns the run ids."""
    run_ids = []
    for item in data["reports"]:
        if item["status"] == "provisional":
            continue
        with session_scope() as session:
            version = reports.validate(session, item["id"], validator_for(item)).version
        run_ids.append(await start_lifecycle(item["id"], version))
    return run_ids


async def follow_up_sample(data: dict[str, Any]) -> list[str]:
    """The rest of the lifecycle on the sample: an announcement recorded (its DMP copy made visible, the
    patient's copy released) and a validated report corrected as version 2 ("annule et remplace")."""
    announced, replaced = follow_ups(data)
    by = {item["id"]: validator_for(item) for item in data["reports"]}
    run_ids = []
    if announced:
        with session_scope() as session:
            version = reports.record_announcement(session, announced, by[announced]).version
        run_ids.append(await start_announcement(announced, version))
        typer.echo(f"announcement recorded for {announced}: releasing what waited for it")
    if replaced:
        with session_scope() as session:
            report = session.get(Report, replaced)
            body = report.body + CORRECTION
            version = reports.replace(session, replaced, body, None, by[replaced]).version
        run_ids.append(await start_lifecycle(replaced, version))
        typer.echo(f"{replaced} corrected: version {version} replaces version {version - 1}")
    return run_ids


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'report':<18} {'v':>2} {'status':<11} " + " ".join(f"{c:<21}" for c in CHANNELS)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = " ".join(f"{row['channels'][c]:<21}" for c in CHANNELS)
        lines.append(f"{row['id']:<18} {row['version']:>2} {row['status']:<11} {cells}")
    reasons = [(row["id"], c, r) for row in rows for c, r in row["reasons"].items()]
    if reasons:
        lines.append("")
        lines.extend(f"{rid} {channel}: {reason}" for rid, channel, reason in reasons)
    return "\n".join(lines)


def _import_sample_directory() -> list[ImportSummary]:
    """The shipped synthetic Annuaire Santé extractions (the worklist's professionals, invented), as a
    site's scheduled import would bring the national files (RIS.ANN.04)."""
    run = new_run_id()
    summaries = []
    for importer, path in ((import_persons, SAMPLE_PERSONS), (import_mailboxes, SAMPLE_MAILBOXES)):
        with path.open("rb") as stream, session_scope() as session:
            summaries.append(importer(session, stream, what=path.name, run=run))
    return summaries


async def _demo(
    data_dir: Path, prefect_port: int, count: int, json_out: Path | None, stay: bool, routes: str = "pfi"
) -> int:
    shutil.rmtree(data_dir, ignore_errors=True)  # the demo always starts from an empty engine of its own
    url = f"sqlite:///{data_dir / 'ris.db'}"
    async with SingleBox(data_dir, url, prefect_port=prefect_port, sandbox=True, routes=routes) as box:
        _print_endpoints(box)
        with session_scope() as session:  # no login needed: `--by` one of them, in this folder only
            acting = demo_users.set_up(session, data_dir, url)
        typer.echo(f"demo users:        {', '.join(acting)} (`--by` accepted in {data_dir} without a login)")
        data = sample_worklist(count)
        with session_scope() as session:
            loaded = worklist.load(session, data, actor="demo")
        if not loaded.ok:
            typer.secho("\n".join(loaded.refused), fg=typer.colors.RED, err=True)
            return 1
        typer.echo(f"worklist loaded: {loaded.loaded}")
        for summary in _import_sample_directory():
            typer.echo(
                f"directory (synthetic {summary.what}): created {summary.created}, "
                f"correspondents updated {summary.correspondents_updated}"
            )
        run_ids = await validate_sample(data)
        typer.echo(f"{len(run_ids)} reports validated; waiting for their lifecycle runs…")
        states = await wait_for_runs(run_ids, timeout=300)
        await wait_for_receipts(timeout=30, direct=routes == "direct")
        follow_up_ids = await follow_up_sample(data)
        states.update(await wait_for_runs(follow_up_ids, timeout=300))
        await wait_for_receipts(timeout=30, direct=routes == "direct")
        with session_scope() as session:
            ids = [r.id for r in session.exec(select(Report).order_by(Report.id))]
            rows = [report_summary(session, rid) for rid in ids]
        typer.echo("")
        typer.echo(_table(rows))
        failed_runs = [s for s in states.values() if s != "Completed"]
        typer.echo(
            f"\nflow runs: {len(states) - len(failed_runs)} completed, {len(failed_runs)} not completed"
        )
        typer.echo(f"Prefect UI: {box.endpoints.ui_url}")
        if json_out:
            json_out.write_text(
                json.dumps({"ui": box.endpoints.ui_url, "reports": rows}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
            typer.echo(f"summary written to {json_out}")
        if stay:
            await _wait_forever()
        return 1 if failed_runs else 0


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        prefect_port: int = typer.Option(4200, help="Port of the local Prefect server (UI and API)"),
        sandbox: bool = typer.Option(
            False, "--sandbox", help="Also start the sandbox peers and point the site's blocks at them"
        ),
    ) -> None:
        """Start the engine on one box with the site's saved configuration: Prefect server, work pool and
        deployments, an engine worker, the receipt and identity listeners. Ctrl-C stops it all."""
        try:
            run_until_stopped(_up(EngineConfig.from_env().data_dir, prefect_port, sandbox))
        except ListenerSettingsError as exc:  # a TLS file named by the site settings is missing
            fail(f"{exc}; fix the site settings (`ris configure site.toml`) and start again")

    @app.command()
    def demo(
        count: int = typer.Option(8, "--reports", min=1, max=200, help="How many sample reports"),
        json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON to this file"),
        stay: bool = typer.Option(True, "--stay/--exit", help="Keep running for the UI after the summary"),
        prefect_port: int = typer.Option(4200, help="Port of the local Prefect server (UI and API)"),
        routes: str = typer.Option(
            "pfi",
            "--routes",
            help="pfi: the sandbox PFI relays the DMP and MSSanté copies (default, today's sites); direct: "
            "the engine sends them itself through the sandbox MSSanté operator and feeds the sandbox DMP "
            "(ITI-41, mutual TLS; what it received in dmp-received/)",
        ),
    ) -> None:
        """Run `up`, load a sample worklist, drive it through the lifecycle, print a summary."""
        if routes not in ("pfi", "direct"):
            raise typer.BadParameter(f"{routes!r}: pfi or direct", param_hint="--routes")
        code = run_until_stopped(
            _demo(EngineConfig.from_env().data_dir / "demo", prefect_port, count, json_out, stay, routes)
        )
        raise typer.Exit(code or 0)
