"""`ris login --device`: the OAuth 2.0 device authorization grant (RFC 8628) against the real OpenID provider
on loopback. The professional approves on another device (an HTTP client playing the phone); the command
polls at the provider's interval, slows down when asked, and keeps nothing when the login is refused,
expired, or its token fails the checks (RIS.PSC.01)."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import httpx
import pytest

from ris.auth import login, tokens
from ris.auth.actor import acting_professional
from ris.auth.settings import PscSettings
from tests.cli_process import RIS, isolated_env
from tests.conftest import ROOT


def _decide(provider, user_code: str, decision: str) -> None:
    answer = httpx.get(f"{provider.issuer}/device", params={"user_code": user_code, "decision": decision})
    assert answer.status_code == 200, answer.text


def test_device_login_from_the_command_line(provider, tmp_path):
    process = subprocess.Popen(
        [*RIS, "login", "--device", "--timeout", "60"],
        cwd=ROOT,
        env=isolated_env(tmp_path, **provider.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = ""
    while "enter the code" not in line:
        line = process.stdout.readline()
        assert line or process.poll() is None, process.stderr.read()
    assert f"open {provider.issuer}/device and enter the code" in line
    _decide(provider, re.search(r"enter the code (\S+)", line).group(1), "approve")  # on the phone
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "logged in as RPPS 10001234567 (eidas1)" in out
    assert stat.S_IMODE(os.stat(login.cache_path(tmp_path)).st_mode) == 0o600
    assert acting_professional(None, tmp_path).method == "psc"


class Phone:
    """Stands for the professional: at the n-th wait of the command, decides on the other device."""

    def __init__(self, provider, decision: str, at_wait: int = 1) -> None:
        self.provider, self.decision, self.at_wait = provider, decision, at_wait
        self.code: login.DeviceCode | None = None
        self.waits: list[float] = []

    def show(self, code: login.DeviceCode) -> None:
        self.code = code

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == self.at_wait:
            if self.decision == "expire":
                for grant in self.provider.state.devices.values():
                    grant["expires_at"] = 0
            else:
                _decide(self.provider, self.code.user_code, self.decision)


def _device_login(provider, phone: Phone, tmp_path, **settings_overrides) -> tokens.Professional:
    settings = PscSettings(**{**PscSettings.from_env().__dict__, **settings_overrides})
    return login.login_device(settings, phone.show, data_dir=tmp_path, sleep=phone.sleep)


def test_polling_waits_while_pending_and_slows_down_when_asked(provider, tmp_path):
    provider.state.behaviour.slow_down_polls = 1
    phone = Phone(provider, "approve", at_wait=3)
    who = _device_login(provider, phone, tmp_path)
    assert who.rpps == "10001234567"
    assert phone.code.verification_uri_complete.endswith(f"user_code={phone.code.user_code}")
    # 1 s asked; slow_down adds 5 s (RFC 8628 §3.5); a pending answer keeps the interval.
    assert phone.waits == [1, 6, 6] and provider.state.polls == 3
    assert login.load(tmp_path)["id_token"]


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("deny", "the professional refused the login"),
        ("expire", "the device code expired before the login was approved"),
    ],
)
def test_a_refused_or_expired_device_login_keeps_nothing(provider, tmp_path, decision, message):
    with pytest.raises(login.LoginFailed, match=message):
        _device_login(provider, Phone(provider, decision), tmp_path)
    assert not login.cache_path(tmp_path).exists()


def test_a_device_login_whose_token_fails_the_checks_keeps_nothing(provider, tmp_path):
    with pytest.raises(tokens.TokenRejected, match=r"^acr: authentication level 'eidas1' is below"):
        _device_login(provider, Phone(provider, "approve"), tmp_path, min_acr="eidas2")
    assert not login.cache_path(tmp_path).exists()
