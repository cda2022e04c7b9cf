"""One OpenID provider on loopback for the whole session; each test starts from its default behaviour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.provider import Behaviour, OpenIdProvider


@pytest.fixture(scope="session")
def provider_server() -> Iterator[OpenIdProvider]:
    with OpenIdProvider() as provider:
        yield provider


@pytest.fixture
def provider(provider_server: OpenIdProvider, monkeypatch: pytest.MonkeyPatch) -> OpenIdProvider:
    provider_server.state.behaviour = Behaviour()
    provider_server.state.polls = 0
    for name, value in provider_server.env().items():
        monkeypatch.setenv(name, value)
    return provider_server
