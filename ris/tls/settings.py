"""The site's revocation-checking settings (site settings `tls`), shared by every outbound link."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Revocation = Literal["hard-fail", "soft-fail"]


class TlsSettings(BaseModel):
    """How strictly the site checks the revocation of its peers' certificates (RIS.MSS.06)."""

    model_config = ConfigDict(frozen=True)  # hashable: it is part of a link's policy, a cache key

    revocation: Revocation = Field(
        "hard-fail",
        description="hard-fail refuses a server whose revocation status no OCSP responder nor CRL gives; "
        "soft-fail lets it through with a warning. A revoked certificate is refused either way",
    )
    cache_minutes: float = Field(
        60,
        gt=0,
        description="How long an OCSP answer or a CRL is reused at most (never past its own nextUpdate)",
    )
    fetch_timeout_s: float = Field(5, gt=0, description="Timeout of one OCSP or CRL request, in seconds")
