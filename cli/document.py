"""`ris document`: write a report's PDF/A-1b and CDA R2 N1 to a folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from blocks.site import load_site_settings
from cli.common import fail, require_engine_api
from ris import documents
from ris.documents import DocumentError
from ris.store import blobs
from ris.store.db import session_scope
from ris.store.documents import find as find_document
from ris.store.documents import keep
from ris.store.reports import NotFound, get_report

app = typer.Typer(help="The report's documents (PDF/A-1b and CDA R2 N1).")


@app.callback()
def group() -> None:
    """The report's documents (PDF/A-1b and CDA R2 N1)."""  # keeps `build` a subcommand when alone


async def _build(report_id: str, version: int) -> None:
    """What the lifecycle's `build-documents` task does, in this process: rendered, then kept once."""
    built = await documents.render_version(report_id, version, await load_site_settings())
    await asyncio.to_thread(keep, report_id, version, built)


@app.command()
def build(
    report_id: str,
    out: Path = typer.Option(..., "--out", help="Folder to write the files into (created if absent)"),
    version: int | None = typer.Option(None, "--version", help="Validated version (default: current)"),
) -> None:
    """Write the CDA and the PDF of a validated version; stored documents are reused, never rebuilt."""
    try:
        with session_scope() as session:
            number = version if version is not None else get_report(session, report_id).version
        if number < 1:
            fail(f"report {report_id} has no validated version yet: validate it first")
        with session_scope() as session:
            stored = find_document(session, report_id, number) is not None
        if not stored:
            require_engine_api(f"building the documents of report {report_id} v{number}")
            asyncio.run(_build(report_id, number))
        with session_scope() as session:
            row = find_document(session, report_id, number)
            pdf, cda = blobs.get(session, row.pdf_sha256), blobs.get(session, row.cda_sha256)
    except (NotFound, DocumentError) as exc:
        fail(str(exc))
    pdf_path = out / row.pdf_filename
    cda_path = pdf_path.with_suffix(".xml")
    try:
        out.mkdir(parents=True, exist_ok=True)
        pdf_path.write_bytes(pdf)
        cda_path.write_bytes(cda)
    except OSError as exc:  # --out names a file, or a folder that cannot be created or written
        fail(f"--out {out}: not a folder the documents can be written into ({exc.strerror or exc})")
    typer.echo(f"CDA: {cda_path}")
    typer.echo(f"PDF: {pdf_path}")
