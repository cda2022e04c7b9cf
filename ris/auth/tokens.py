"""Checking a Pro Santé Connect ID token: signature by a key of the provider's JWKS, issuer, audience,
expiry, and the authentication level (acr, eIDAS). The professional's RPPS comes from the national
identifier IdNatPS (`8` + RPPS) the token carries."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ris.auth.settings import ACR_LEVELS, PscSettings
from ris.tls import TlsRefused

ALGORITHMS = ["RS256", "PS256", "ES256"]
LEEWAY_S = 30  # clock skew between the provider and this machine
IDNAT_RE = re.compile(r"^8?(\d{11})$")
RPPS_CLAIMS = ("SubjectNameID", "preferred_username")


class TokenRejected(ValueError):
    pass


class ProviderUnreachable(ConnectionError):
    pass


@dataclass(frozen=True)
class Professional:
    rpps: str
    subject: str
    acr: str
    expires_at: dt.datetime


def discover(settings: PscSettings) -> dict[str, Any]:
    """The provider's OpenID configuration (its issuer must be the one configured)."""
    url = f"{settings.issuer}/.well-known/openid-configuration"
    try:
        with settings.http() as http:
            response = http.get(url)
        response.raise_for_status()
        config = response.json()
    except TlsRefused as exc:
        raise ProviderUnreachable(str(exc)) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnreachable(f"Pro Santé Connect ({url}) does not answer: {exc}") from exc
    if config.get("issuer", "").rstrip("/") != settings.issuer:
        raise TokenRejected(
            f"issuer: the provider calls itself {config.get('issuer')!r}, not {settings.issuer!r}"
        )
    return config


def provider_keys(config: dict[str, Any], settings: PscSettings) -> KeySet:
    try:
        with settings.http() as http:
            response = http.get(config["jwks_uri"])
        response.raise_for_status()
        return KeySet.import_key_set(response.json())
    except TlsRefused as exc:
        raise ProviderUnreachable(str(exc)) from exc
    except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
        raise ProviderUnreachable(f"Pro Santé Connect keys (jwks_uri) cannot be read: {exc}") from exc


def _rpps(claims: dict[str, Any]) -> str:
    for name in RPPS_CLAIMS:
        found = IDNAT_RE.match(str(claims.get(name, "")))
        if found:
            return found.group(1)
    raise TokenRejected(f"{' or '.join(RPPS_CLAIMS)}: the token carries no RPPS national identifier")


def check_claims(
    claims: dict[str, Any], settings: PscSettings, *, now: dt.datetime, nonce: str | None = None
) -> Professional:
    if claims.get("iss", "").rstrip("/") != settings.issuer:
        raise TokenRejected(f"iss: issued by {claims.get('iss')!r}, not {settings.issuer!r}")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.client_id not in audiences:
        raise TokenRejected(f"aud: issued for {audience!r}, not for this RIS ({settings.client_id!r})")
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float):
        raise TokenRejected("exp: the token has no expiry")
    expires_at = dt.datetime.fromtimestamp(expiry, dt.UTC)
    if expires_at + dt.timedelta(seconds=LEEWAY_S) <= now:
        raise TokenRejected(
            f"exp: expired at {expires_at.isoformat(timespec='seconds')}; log in again (`ris login`)"
        )
    acr = claims.get("acr")
    if acr not in ACR_LEVELS or ACR_LEVELS.index(acr) < ACR_LEVELS.index(settings.min_acr):
        raise TokenRejected(
            f"acr: authentication level {acr!r} is below the site's minimum {settings.min_acr!r}"
        )
    if nonce is not None and claims.get("nonce") != nonce:
        raise TokenRejected("nonce: does not match the login request")
    return Professional(_rpps(claims), str(claims.get("sub", "")), acr, expires_at)


def verify(
    id_token: str,
    keys: KeySet,
    settings: PscSettings,
    *,
    now: dt.datetime | None = None,
    nonce: str | None = None,
) -> Professional:
    """The professional the token proves, or TokenRejected naming the claim and the rule."""
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise TokenRejected(f"signature: not signed by a key of the provider ({exc.error})") from exc
    return check_claims(token.claims, settings, now=now or dt.datetime.now(dt.UTC), nonce=nonce)
