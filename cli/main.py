"""The `ris` console command."""

from __future__ import annotations

import typer

from cli import db, delivery, demo, document, hl7, identity, report, worklist

app = typer.Typer(
    name="ris",
    help="Radiology report lifecycle engine (Ségur DSR Radiologie vague 1) on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(worklist.app, name="worklist")
app.add_typer(report.app, name="report")
app.add_typer(delivery.app, name="delivery")
app.add_typer(document.app, name="document")
app.add_typer(identity.app, name="identity")
app.add_typer(hl7.app, name="hl7")
demo.register(app)


if __name__ == "__main__":
    app()
