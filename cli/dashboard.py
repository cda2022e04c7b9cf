"""`ris dashboard`: the RIS.TBB figures (DMP feeds, MSSanté sends, failures, cases) per period, FINESS
géographique and radiologist, as a table, CSV or JSON (the documented extract format, docs/operations.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
from enum import StrEnum

import typer

from blocks.site import load_site_settings
from cli.common import print_json, require_engine_api
from ris.operations import dashboard
from ris.store.db import require_current, session_scope


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class PeriodOption(StrEnum):
    year = "year"
    month = "month"
    week = "week"
    day = "day"


def _site(finess: str | None) -> tuple[str, str]:
    """(FINESS géographique, time zone): the site's saved settings unless a FINESS is given."""
    if finess is not None:
        return finess, "Europe/Paris"
    require_engine_api("`ris dashboard` without --finess")
    settings = asyncio.run(load_site_settings())
    return settings.facility.finess_geo, settings.timezone


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def show_dashboard(
        period: PeriodOption = typer.Option(PeriodOption.month, help="Count per year, month, week or day"),
        output: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
        since: dt.datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="First day counted"),
        until: dt.datetime | None = typer.Option(None, formats=["%Y-%m-%d"], help="Last day counted"),
        finess: str | None = typer.Option(
            None, help="FINESS géographique to label the figures with (default: the site settings')"
        ),
    ) -> None:
        """DMP feeds and MSSanté sends (total / INS qualifiée / not), failures and cases, per period,
        FINESS géographique and radiologist (RPPS of the validator); the `all` rows sum the radiologists."""
        finess_geo, zone = _site(finess)
        require_current()
        with session_scope() as session:
            rows = dashboard.compute(
                session,
                period=period.value,
                finess_geo=finess_geo,
                tz=zone,
                since=since.date() if since else None,
                until=until.date() if until else None,
            )
        if output is Format.json:
            print_json(rows)
        elif output is Format.csv:
            typer.echo(dashboard.to_csv(rows), nl=False)
        else:
            typer.echo(dashboard.to_table(rows))
