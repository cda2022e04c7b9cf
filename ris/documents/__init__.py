"""The report's documents: the PDF/A-1b rendering and the CDA R2 N1 envelope that carries it.

`build()` checks everything first (`collect`), so a refused report never yields a document, then
renders (`render`). The engine runs the two apart: `collect` where the report was loaded (fast, and its
refusals name the field and the rule), `render` in a pool process (CPU-bound, see ris.process_pool).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from ris import process_pool
from ris.documents import cda, pdf
from ris.documents.facts import DocumentError, Facts, collect
from ris.documents.naming import pdf_filename
from ris.site.settings import SiteSettings
from ris.store.db import unit_of_work
from ris.store.reports import ReportBundle, load_bundle

__all__ = ["BuiltDocuments", "DocumentError", "build", "collect", "collect_version", "render"]


@dataclass(frozen=True)
class BuiltDocuments:
    pdf: bytes
    cda: bytes
    pdf_filename: str  # contains the patient's name: never log it
    document_id: str

    def __repr__(self) -> str:  # keep the file name (health data) out of reprs and tracebacks
        sizes = f"pdf={len(self.pdf)} B, cda={len(self.cda)} B"
        return f"BuiltDocuments(document_id={self.document_id!r}, {sizes})"


def build(
    bundle: ReportBundle,
    settings: SiteSettings,
    *,
    created_at: dt.datetime | None = None,
    require_ins: bool = False,
) -> BuiltDocuments:
    """PDF/A-1b + CDA R2 N1 of one validated version; the same bundle always gives the same bytes.

    `created_at` (CDA effectiveTime, PDF dates) defaults to the validation time. `require_ins=True`
    refuses an identity that is not qualified (for a use that needs the INS); otherwise such an
    identity is rendered with its traits only (INS rule 28). Raises DocumentError before building.
    """
    return render(collect(bundle, settings, created_at=created_at, require_ins=require_ins), settings)


def collect_version(session: Session, report_id: str, version: int, settings: SiteSettings) -> Facts:
    """The checked facts of a stored version (raises DocumentError naming the field and the rule)."""
    return collect(load_bundle(session, report_id, version), settings)


def render(facts: Facts, settings: SiteSettings) -> BuiltDocuments:
    """The PDF/A-1b (checked) and the CDA that embeds it, from checked facts; picklable both ways."""
    pdf_bytes = pdf.render(facts, settings)
    return BuiltDocuments(
        pdf=pdf_bytes,
        cda=cda.render(facts, settings, pdf_bytes),
        pdf_filename=pdf_filename(facts),
        document_id=facts.document_id,
    )


async def render_version(report_id: str, version: int, settings: SiteSettings) -> BuiltDocuments:
    """The documents of a stored version, from its checked facts, rendered in this process's pool (never in
    a thread: fpdf2 and pikepdf's PDF/A check are not safe beside other work)."""
    facts = await unit_of_work(collect_version, report_id, version, settings)
    return await process_pool.shared().run(render, facts, settings)
