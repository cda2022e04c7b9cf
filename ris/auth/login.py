"""Pro Santé Connect login from the command line: OpenID Connect authorization code flow with PKCE (S256),
the browser sent back to a one-shot listener on loopback (RFC 8252 §7.3). The ID token is checked (signature,
issuer, audience, expiry, acr, nonce) before it is kept in a 0600 file of the data folder; it is checked
again, against the provider's keys, each time an action uses it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from ris.auth import tokens
from ris.auth.settings import PscSettings

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
    auth = (settings.client_id, settings.client_secret) if settings.client_secret else None
    try:
        response = httpx.post(config["token_endpoint"], data=form, auth=auth, timeout=settings.timeout_s)
    except httpx.HTTPError as exc:
        raise tokens.ProviderUnreachable(f"Pro Santé Connect token endpoint: {exc}") from exc
    if response.status_code != 200:
        raise LoginFailed(f"token endpoint answered {response.status_code}: {response.text[:200]}")
    issued = response.json()
    professional = tokens.verify(
        issued.get("id_token", ""), tokens.provider_keys(config, settings), settings, nonce=nonce
    )
    save(data_dir, {"id_token": issued["id_token"], "access_token": issued.get("access_token")})
    return professional


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
