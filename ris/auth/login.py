"""Pro Santé Connect login from the command line: OpenID Connect authorization code flow with PKCE (S256),
the browser sent back to a one-shot listener on loopback (RFC 8252 §7.3); or, on a machine without a
browser, the device authorization grant (RFC 8628: a code the professional enters on another device). The
ID token is checked (signature, issuer, audience, expiry, acr, nonce) before it is kept in a 0600 file of
the data folder; it is checked again, against the provider's keys, each time an action uses it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from ris.auth import tokens
from ris.auth.settings import PscSettings
from ris.tls import TlsRefused

CACHE_NAME = "psc-login.json"


class LoginFailed(RuntimeError):
    pass


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) of RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Callback(http.server.BaseHTTPRequestHandler):
    received: dict[str, str]
    done: threading.Event

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if urlsplit(self.path).path != "/callback" or self.done.is_set():
            self.send_error(404)
            return
        self.server.received = query  # type: ignore[attr-defined]
        self.done.set()
        body = "Connexion Pro Santé Connect terminée : vous pouvez fermer cette fenêtre.".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # the query holds the code: never in a log
        pass


def _receive_code(on_url: Callable[[str], None], timeout_s: float) -> dict[str, str]:
    done = threading.Event()
    handler = type("Callback", (_Callback,), {"done": done})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    server.received = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        on_url(f"http://127.0.0.1:{server.server_address[1]}/callback")
        if not done.wait(timeout_s):
            raise LoginFailed(f"no answer from Pro Santé Connect within {timeout_s:.0f} s")
        return server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def login(
    settings: PscSettings, show_url: Callable[[str], None], *, data_dir: Path, timeout_s: float = 300
) -> tokens.Professional:
    """Run the flow: `show_url` gets the authorization address (open it in a browser)."""
    config = tokens.discover(settings)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    redirect: dict[str, str] = {}

    def send_user(redirect_uri: str) -> None:
        redirect["uri"] = redirect_uri
        query = {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": settings.scopes,
            "state": state,
            "nonce": nonce,
            "acr_values": settings.min_acr,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        show_url(f"{config['authorization_endpoint']}?{urlencode(query)}")

    answer = _receive_code(send_user, timeout_s)
    if answer.get("state") != state:
        raise LoginFailed("state: the answer does not belong to this login request")
    if "error" in answer:
        raise LoginFailed(
            f"Pro Santé Connect refused the login: {answer['error']} {answer.get('error_description', '')}"
        )
    if not answer.get("code"):
        raise LoginFailed("code: Pro Santé Connect returned no authorization code")
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": redirect["uri"],
        "code_verifier": verifier,
        "client_id": settings.client_id,
    }
    response = _post(config["token_endpoint"], form, settings, "token endpoint")
    if response.status_code != 200:
        raise LoginFailed(f"token endpoint answered {response.status_code}: {response.text[:200]}")
    return _keep(response.json(), config, settings, data_dir, nonce)


def _post(url: str, form: dict[str, str], settings: PscSettings, what: str) -> httpx.Response:
    auth = (settings.client_id, settings.client_secret) if settings.client_secret else None
    try:
        with settings.http() as http:
            return http.post(url, data=form, auth=auth)
    except TlsRefused as exc:
        raise tokens.ProviderUnreachable(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise tokens.ProviderUnreachable(f"Pro Santé Connect {what}: {exc}") from exc


def _keep(
    issued: dict[str, Any], config: dict[str, Any], settings: PscSettings, data_dir: Path, nonce: str | None
) -> tokens.Professional:
    """Check the issued ID token, then keep it; nothing is kept when a check fails."""
    professional = tokens.verify(
        issued.get("id_token", ""), tokens.provider_keys(config, settings), settings, nonce=nonce
    )
    save(data_dir, {"id_token": issued["id_token"], "access_token": issued.get("access_token")})
    return professional


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_S = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the polling interval


@dataclass(frozen=True)
class DeviceCode:
    """What the professional needs to approve the login on another device (RFC 8628 §3.2)."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in_s: float


def login_device(
    settings: PscSettings,
    show_code: Callable[[DeviceCode], None],
    *,
    data_dir: Path,
    timeout_s: float = 300,
    sleep: Callable[[float], None] = time.sleep,
) -> tokens.Professional:
    """Run the device flow: `show_code` tells the user where to go and what to enter, then the token
    endpoint is polled at the provider's interval until the login is approved, refused or expired."""
    config = tokens.discover(settings)
    endpoint = config.get("device_authorization_endpoint")
    if not endpoint:
        raise LoginFailed("device_authorization_endpoint: this provider offers no device login (RFC 8628)")
    form = {"client_id": settings.client_id, "scope": settings.scopes, "acr_values": settings.min_acr}
    response = _post(endpoint, form, settings, "device authorization endpoint")
    if response.status_code != 200:
        raise LoginFailed(
            f"device authorization endpoint answered {response.status_code}: {response.text[:200]}"
        )
    grant = response.json()
    if not (grant.get("device_code") and grant.get("user_code") and grant.get("verification_uri")):
        raise LoginFailed("device authorization: the answer lacks device_code, user_code or verification_uri")
    expires_in = float(grant.get("expires_in") or timeout_s)
    show_code(
        DeviceCode(
            grant["user_code"], grant["verification_uri"], grant.get("verification_uri_complete"), expires_in
        )
    )
    interval = float(grant.get("interval") or 5)  # RFC 8628 §3.2: 5 s when the provider says nothing
    deadline = time.monotonic() + min(expires_in, timeout_s)
    poll = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": settings.client_id}
    while True:
        if time.monotonic() + interval > deadline:
            raise LoginFailed(f"the login was not approved within {min(expires_in, timeout_s):.0f} s")
        sleep(interval)
        response = _post(config["token_endpoint"], poll, settings, "token endpoint")
        if response.status_code == 200:
            return _keep(response.json(), config, settings, data_dir, None)
        error = _error(response)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_S
            continue
        if error == "access_denied":
            raise LoginFailed("Pro Santé Connect: the professional refused the login")
        if error == "expired_token":
            raise LoginFailed(
                "the device code expired before the login was approved: run `ris login --device` again"
            )
        raise LoginFailed(f"token endpoint answered {response.status_code}: {response.text[:200]}")


def _error(response: httpx.Response) -> str | None:
    try:
        return response.json().get("error")
    except ValueError:
        return None


def cache_path(data_dir: Path) -> Path:
    return data_dir / CACHE_NAME


def save(data_dir: Path, content: dict[str, Any]) -> None:
    """Write the tokens readable by this user only (0600 from creation, not chmod after)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(data_dir)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(content, out)


def load(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(cache_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def logout(data_dir: Path) -> bool:
    path = cache_path(data_dir)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def current(
    settings: PscSettings, data_dir: Path, now: dt.datetime | None = None
) -> tokens.Professional | None:
    """The logged-in professional, checked now against the provider's keys; None without a login;
    TokenRejected when the kept token no longer passes (expired...)."""
    kept = load(data_dir)
    if not kept or not kept.get("id_token"):
        return None
    config = tokens.discover(settings)
    return tokens.verify(kept["id_token"], tokens.provider_keys(config, settings), settings, now=now)
