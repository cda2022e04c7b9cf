"""Rule 19: the per-site catalogue of identity proofs (justificatifs) and their confidence level."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Justificatif(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    label: str
    nature: Literal["document", "electronic"] = Field(description="pièce justificative or electronic device")
    high_confidence: bool


DEFAULT_JUSTIFICATIFS = [
    # High-confidence devices per the RNIV (ins.md §4, third-party reading, to confirm with the RNIV).
    Justificatif(code="PASSPORT", label="Passeport", nature="document", high_confidence=True),
    Justificatif(code="CNI", label="Carte nationale d'identité", nature="document", high_confidence=True),
    Justificatif(
        code="TITRE_SEJOUR", label="Titre de séjour permanent", nature="document", high_confidence=True
    ),
    Justificatif(code="LIVRET_FAMILLE", label="Livret de famille", nature="document", high_confidence=False),
    Justificatif(
        code="ACTE_NAISSANCE", label="Extrait d'acte de naissance", nature="document", high_confidence=False
    ),
    Justificatif(code="CARTE_VITALE", label="Carte Vitale", nature="electronic", high_confidence=False),
]


class JustificatifPolicy(BaseModel):
    """What a site configures (RIS.INS.19, RIS.INS.21); embedded defaults until the site settings carry it."""

    catalogue: list[Justificatif] = Field(default_factory=lambda: list(DEFAULT_JUSTIFICATIFS))
    auto_validate: bool = Field(
        False, description="Validate automatically when a high-confidence proof is recorded (can be off)"
    )

    def find(self, code: str) -> Justificatif | None:
        return next((j for j in self.catalogue if j.code == code), None)
