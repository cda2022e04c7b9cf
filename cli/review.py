"""`ris report review`: the reports that wait on a radiologist (RIS.CRR.05): drafts and provisional ones
(not validated yet), and validated ones whose required announcement to the patient is not recorded yet.
Ids, accession numbers, dates and the responsible radiologist only; never a patient's name."""

from __future__ import annotations

import datetime as dt
import re

import typer

from cli.common import fail, print_json
from ris.operations import reminders
from ris.store.db import session_scope
from ris.store.models import utcnow

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
DURATION_RULE = "a number followed by m (minutes), h (hours) or d (days), e.g. 30m, 48h, 2d"


def parse_duration(text: str) -> dt.timedelta:
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"--older-than {text!r}: must be {DURATION_RULE}")
    return dt.timedelta(**{UNITS[match[2]]: float(match[1])})


def review(
    older_than: str = typer.Option(
        "0m", "--older-than", help=f"Only what has waited longer than this: {DURATION_RULE}"
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Drafts, provisional reports and pending announcements older than --older-than, oldest first."""
    try:
        threshold = parse_duration(older_than)
    except ValueError as exc:
        fail(str(exc))
    now = utcnow()
    with session_scope() as session:
        items = [w.as_dict(now) for w in reminders.review(session, now, threshold)]
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo(f"nothing waits on a radiologist for longer than {older_than.strip()}")
        return
    labels = {"draft": "draft", "provisional": "provisional", "announcement": "announcement pending"}
    for item in items:
        who = item["responsible_rpps"] or "?"
        if item["responsible_name"]:
            who = f"{item['responsible_name']} (RPPS {who})"
        what = labels[item["kind"]]
        typer.echo(
            f"{item['id']}  v{item['version']}  {what:<21} accession {item['accession_number']}"
            f"  since {item['since']} ({item['waiting_hours']} h)  responsible {who}"
        )


def register(app: typer.Typer) -> None:
    """Add `review` to the `ris report` commands."""
    app.command(name="review")(review)
