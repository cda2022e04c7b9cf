"""The report's documents: the PDF/A-1b rendering and the CDA R2 N1 envelope that carries it.

`build()` is the only entry point the rest of the engine needs. It checks everything first
(`facts.collect`), so a refused report never yields a document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ris.documents import cda, pdf
from ris.documents.facts import DocumentError, collect
from ris.documents.naming import pdf_filename
from ris.settings import SiteSettings
from ris.store.reports import ReportBundle

__all__ = ["BuiltDocuments", "DocumentError", "build"]


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
    facts = collect(bundle, settings, created_at=created_at, require_ins=require_ins)
    pdf_bytes = pdf.render(facts, settings)
    return BuiltDocuments(
        pdf=pdf_bytes,
        cda=cda.render(facts, settings, pdf_bytes),
        pdf_filename=pdf_filename(facts),
        document_id=facts.document_id,
    )
