"""Pro Santé Connect ID tokens checked against a real OpenID provider on loopback: its JWKS fetched over
HTTP, then signature, issuer, audience, expiry and acr (eIDAS level) (RIS.PSC.01)."""

from __future__ import annotations

import time

import pytest

from ris.auth import tokens
from ris.auth.settings import PscSettings


def _check(provider, token: str, **settings_overrides):
    settings = PscSettings.from_env()
    settings = PscSettings(**{**settings.__dict__, **settings_overrides})
    config = tokens.discover(settings)
    return tokens.verify(token, tokens.provider_keys(config, settings), settings)


def test_a_token_of_the_provider_gives_the_professionals_rpps(provider):
    who = _check(provider, provider.state.id_token())
    assert (who.rpps, who.acr) == ("10001234567", "eidas1")


def test_an_expired_token_is_refused(provider):
    past = int(time.time()) - 3600
    with pytest.raises(tokens.TokenRejected, match=r"^exp: expired at .*log in again"):
        _check(provider, provider.state.id_token(exp=past, iat=past - 60))


def test_a_token_for_another_audience_is_refused(provider):
    provider.state.behaviour.audience = "another-service"
    with pytest.raises(tokens.TokenRejected, match=r"^aud: issued for 'another-service'"):
        _check(provider, provider.state.id_token())


def test_a_token_signed_by_a_key_outside_the_providers_jwks_is_refused(provider):
    provider.state.behaviour.foreign_key = True
    with pytest.raises(tokens.TokenRejected, match=r"^signature: not signed by a key of the provider"):
        _check(provider, provider.state.id_token())


def test_an_authentication_level_below_the_sites_minimum_is_refused(provider):
    with pytest.raises(tokens.TokenRejected, match=r"^acr: authentication level 'eidas1' is below .*eidas2"):
        _check(provider, provider.state.id_token(), min_acr="eidas2")
    with pytest.raises(tokens.TokenRejected, match=r"^acr: authentication level None"):
        _check(provider, provider.state.id_token(acr=None))


def test_a_token_of_another_issuer_is_refused(provider):
    with pytest.raises(tokens.TokenRejected, match=r"^iss: issued by 'https://elsewhere.example'"):
        _check(provider, provider.state.id_token(iss="https://elsewhere.example"))
