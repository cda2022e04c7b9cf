"""The site's Pro Santé Connect client registration and its policy for self-declared actors, read from the
environment (the CLI needs them before any engine is up)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError

from ris.tls import TlsPolicy, TlsSettings
from ris.tls.http import client

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
    ca_bundle: str | None = None  # PEM CAs of the provider's certificate; None: the system CAs
    tls: TlsSettings = field(default_factory=TlsSettings)

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
        revocation = os.environ.get("RIS_PSC_REVOCATION", "hard-fail").strip()
        try:
            tls = TlsSettings(revocation=revocation)
        except ValidationError as exc:
            raise AuthConfigError(f"RIS_PSC_REVOCATION {revocation!r}: hard-fail or soft-fail") from exc
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=os.environ.get("RIS_PSC_CLIENT_SECRET") or None,
            scopes=os.environ.get("RIS_PSC_SCOPES", "openid scope_all"),
            min_acr=min_acr,
            ca_bundle=os.environ.get("RIS_PSC_CA_BUNDLE") or None,
            tls=tls,
        )

    def http(self) -> httpx.Client:
        """A client for the provider: over TLS, the engine's policy (the provider's certificate checked for
        revocation before a request leaves); plain HTTP only where the issuer says so (a test provider)."""
        if not self.issuer.startswith("https://"):
            return httpx.Client(timeout=self.timeout_s)
        policy = TlsPolicy(
            f"Pro Santé Connect {httpx.URL(self.issuer).netloc.decode()}",
            ca_bundle=self.ca_bundle,
            settings=self.tls,
        )
        return client(policy, timeout=self.timeout_s)


def declared_actors_allowed() -> bool:
    """Whether `--by ID` is accepted without a login (RIS_DECLARED_ACTORS=allowed|refused; default
    refused: the audit trail's "who" is then a proven login, not what was typed). A site without Pro Santé
    Connect allows them knowingly; a demo folder has its own allowance (ris.auth.demo_users)."""
    value = os.environ.get("RIS_DECLARED_ACTORS", "refused").strip().lower()
    if value not in ("allowed", "refused"):
        raise AuthConfigError(f"RIS_DECLARED_ACTORS {value!r}: allowed or refused")
    return value == "allowed"
