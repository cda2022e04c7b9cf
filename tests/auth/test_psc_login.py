"""`ris login` as a person runs it, against a real OpenID provider on loopback: authorization code flow with
PKCE (the provider refuses a token request whose verifier does not match the challenge), the browser step
played by an HTTP client following the redirects to the CLI's loopback listener, the token kept in a 0600
file; then the acting RPPS is the logged-in one (RIS.PSC.01)."""

from __future__ import annotations

import os
import stat
import subprocess

import httpx
import pytest

from ris.auth import login
from ris.auth.actor import ActorRefused, acting_professional
from tests.cli_process import RIS, isolated_env, run_ris
from tests.conftest import ROOT


def _login_as_a_person(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [*RIS, "login", "--no-browser", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = ""
    while not url.startswith("http"):
        url = process.stdout.readline().strip()
        assert url or process.poll() is None, process.stderr.read()
    answer = httpx.get(url, follow_redirects=True, timeout=30)  # the browser: PSC, then back to the CLI
    assert answer.status_code == 200 and "vous pouvez fermer" in answer.text
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_login_keeps_a_checked_token_readable_by_the_user_only(provider, tmp_path):
    env = isolated_env(tmp_path, **provider.env())
    done = _login_as_a_person(env)
    assert done.returncode == 0, done.stderr
    assert "logged in as RPPS 10001234567 (eidas1)" in done.stdout
    kept = login.cache_path(tmp_path)
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert acting_professional(None, tmp_path).rpps == "10001234567"
    assert acting_professional(None, tmp_path).method == "psc"
    with pytest.raises(ActorRefused, match=r"--by 10009876541: differs from the logged-in professional's"):
        acting_professional("10009876541", tmp_path)
    assert run_ris(env, "logout").stdout.strip() == "logged out"
    assert not kept.exists()


def test_a_login_whose_token_fails_the_checks_keeps_nothing(provider, tmp_path):
    provider.state.behaviour.acr = "eidas1"
    env = isolated_env(tmp_path, **provider.env(RIS_PSC_MIN_ACR="eidas2"))
    done = _login_as_a_person(env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: login failed: acr: authentication level 'eidas1' is below")
    assert not login.cache_path(tmp_path).exists()


def test_without_login_the_declared_actor_is_used_only_where_the_site_allows_it(
    provider, tmp_path, monkeypatch
):
    monkeypatch.delenv("RIS_DECLARED_ACTORS", raising=False)  # the default: refused
    with pytest.raises(ActorRefused, match=r"nobody is logged in: log in with `ris login`"):
        acting_professional("10009876541", tmp_path)
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")
    assert acting_professional("10009876541", tmp_path).method == "declared"
    with pytest.raises(ActorRefused, match=r"^--by: give the acting RPPS, or log in"):
        acting_professional(None, tmp_path)


def test_an_expired_login_is_not_an_actor(provider, tmp_path, monkeypatch):
    provider.state.behaviour.lifetime_s = -3600
    login.save(tmp_path, {"id_token": provider.state.id_token()})
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "refused")
    with pytest.raises(ActorRefused, match=r"login is no longer valid \(exp: expired"):
        acting_professional(None, tmp_path)
