"""`ris audit`: the audit trail (append-only in the database, hash-chained by the sealer)."""

from __future__ import annotations

import time

import typer
from sqlmodel import Session

from cli.common import fail
from ris.store import audit
from ris.store.db import get_engine, require_current, session_scope

app = typer.Typer(
    help="The audit trail: append-only; a sealer chains each entry to the one before by a hash, seconds "
    "after its transaction ends."
)

SHOWN = 50
BUSY_WAIT_S = 30.0  # how long `seal` waits for another sealer (an engine worker) to finish its round


@app.command()
def seal() -> None:
    """Chain every entry whose transaction has ended, now (engine workers do it every few seconds):
    before a verification that must find nothing awaiting, or on a site without a running worker."""
    require_current()
    sealed, deadline = 0, time.monotonic() + BUSY_WAIT_S
    while True:
        with session_scope() as session:
            done = audit.seal(session)
        if done is None:  # another sealer's round: it ends within a second
            if time.monotonic() > deadline:
                fail(f"another sealer held the chain for {BUSY_WAIT_S:.0f} s: run `ris audit seal` again")
            time.sleep(0.2)
            continue
        sealed += done
        if done < audit.SEAL_BATCH:
            break
    with Session(get_engine()) as session:
        state = audit.chain_state(session)
    typer.echo(f"sealed {sealed} entries: {state.sealed} in the chain, head {state.head or '(empty)'}")
    if state.awaiting:
        typer.echo(f"{state.awaiting} entries await sealing: older transactions were still running")


@app.command()
def verify() -> None:
    """Walk the sealed chain: exit 0 when every entry is as written and in place, 1 naming each one that
    was rewritten, deleted, inserted, moved or sealed twice; says how many entries await sealing (written
    in the last seconds). Keep the printed head off this machine: a later run that does not reach it
    means the trail was rebuilt."""
    require_current()
    with Session(get_engine()) as session:  # a read: no write lock on SQLite
        result = audit.verify(session)
    for problem in result.problems[:SHOWN]:
        typer.echo(problem, err=True)
    waiting = f"{result.awaiting} awaiting sealing"
    if result.problems:
        more = len(result.problems) - SHOWN
        fail(
            f"audit trail broken: {len(result.problems)} problem(s) in {result.entries} sealed entries, "
            f"{waiting}" + (f" ({more} not shown)" if more > 0 else ""),
            code=1,
        )
    typer.echo(
        f"audit trail intact: {result.entries} entries sealed, {waiting}, head {result.head or '(empty)'}"
    )
