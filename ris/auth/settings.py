"""The site's Pro Santé Connect client registration and its policy for self-declared actors, read from the
environment (the CLI needs them before any engine is up)."""

from __future__ import annotations

import os
from dataclasses import dataclass

ACR_LEVELS = ("eidas1", "eidas2", "eidas3")  # eIDAS low < substantial < high, as PSC names them


class AuthConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PscSettings:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str = "openid scope_all"
    min_acr: str = "eidas1"
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> PscSettings | None:
        """None when the site has not registered a PSC client (RIS_PSC_ISSUER unset)."""
        issuer = os.environ.get("RIS_PSC_ISSUER", "").strip()
        if not issuer:
            return None
        client_id = os.environ.get("RIS_PSC_CLIENT_ID", "").strip()
        if not client_id:
            raise AuthConfigError(
                "RIS_PSC_CLIENT_ID: required with RIS_PSC_ISSUER (the site's PSC client id)"
            )
        min_acr = os.environ.get("RIS_PSC_MIN_ACR", "eidas1").strip()
        if min_acr not in ACR_LEVELS:
            raise AuthConfigError(f"RIS_PSC_MIN_ACR {min_acr!r}: one of {', '.join(ACR_LEVELS)}")
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=os.environ.get("RIS_PSC_CLIENT_SECRET") or None,
            scopes=os.environ.get("RIS_PSC_SCOPES", "openid scope_all"),
            min_acr=min_acr,
        )


def declared_actors_allowed() -> bool:
    """Whether `--by RPPS` is accepted without a login (RIS_DECLARED_ACTORS=allowed|refused; default
    allowed, so that sites without PSC, the demo and the tests keep working)."""
    value = os.environ.get("RIS_DECLARED_ACTORS", "allowed").strip().lower()
    if value not in ("allowed", "refused"):
        raise AuthConfigError(f"RIS_DECLARED_ACTORS {value!r}: allowed or refused")
    return value == "allowed"
