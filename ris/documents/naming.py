"""PDF file name (RIS.DOC.01, cda-cr-ima.md §8): `<AAAAMMJJ>_CR_d_imagerie_medicale_<NOM>_<PRENOM>.pdf`.

ASCII, underscores between parts, hyphens inside a part. The name contains the patient's name: it is
health data and must never be logged or put in a Prefect artifact.
"""

from __future__ import annotations

import re

from ris.documents.facts import Facts
from ris.identity.datamatrix import insi_text

DOCUMENT_TYPE = "CR_d_imagerie_medicale"


def _part(value: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", insi_text(value)).strip("-") or "X"


def pdf_filename(facts: Facts) -> str:
    patient = facts.patient
    family = _part(patient.birth_name)
    given = _part(patient.first_birth_given_name)
    return f"{facts.validated_at:%Y%m%d}_{DOCUMENT_TYPE}_{family}_{given}.pdf"
