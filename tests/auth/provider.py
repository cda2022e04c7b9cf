"""A real OpenID Connect provider on loopback standing in for Pro Santé Connect in the tests: discovery,
JWKS, authorization endpoint (the CPS authentication step grants the configured professional at once),
device authorization endpoint (RFC 8628) with its verification page (`/device?user_code=...&decision=
approve|deny` is the professional's step on another device), token endpoint with client authentication,
PKCE S256 enforced and the device grant's pending / slow_down / denied / expired answers, RS256-signed ID
tokens. Knobs let a test make it issue an expired token, one for another audience, one signed by a foreign
key, or a low acr, ask for slower polling, or let device codes expire."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "ris-engine-test"
CLIENT_SECRET = "psc-test-secret"


@dataclass
class Behaviour:
    rpps: str = "10001234567"
    acr: str = "eidas1"
    lifetime_s: int = 120
    audience: str | None = None  # None: the client's id
    foreign_key: bool = False
    device_interval: int = 1  # seconds between polls the provider asks for
    device_expires_in: int = 600
    slow_down_polls: int = 0  # the next N device polls answer slow_down


@dataclass
class ProviderState:
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "psc-1"}))
    foreign: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "psc-1"}))
    behaviour: Behaviour = field(default_factory=Behaviour)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # device_code -> grant
    polls: int = 0

    def id_token(self, nonce: str | None = None, **overrides: Any) -> str:
        now = int(time.time())
        b = self.behaviour
        claims = {
            "iss": self.issuer,
            "sub": f"psc-{b.rpps}",
            "aud": b.audience or CLIENT_ID,
            "iat": now,
            "exp": now + b.lifetime_s,
            "acr": b.acr,
            "SubjectNameID": "8" + b.rpps,
            "preferred_username": "8" + b.rpps,
            **({"nonce": nonce} if nonce else {}),
            **overrides,
        }
        key = self.foreign if b.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": "psc-1"}, claims, key)


def _handler(state: ProviderState) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, {
                    "issuer": state.issuer,
                    "authorization_endpoint": f"{state.issuer}/authorize",
                    "token_endpoint": f"{state.issuer}/token",
                    "device_authorization_endpoint": f"{state.issuer}/device_authorization",
                    "jwks_uri": f"{state.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "acr_values_supported": ["eidas1", "eidas2", "eidas3"],
                })  # fmt: skip
            elif url.path == "/jwks":
                self._json(200, {"keys": [state.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                self._authorize(query)
            elif url.path == "/device":
                self._verify_device(query)
            else:
                self._json(404, {"error": "not_found"})

        def _authorize(self, query: dict[str, str]) -> None:
            redirect = query.get("redirect_uri", "")
            ok = (
                query.get("client_id") == CLIENT_ID
                and redirect.startswith("http://127.0.0.1:")
                and query.get("response_type") == "code"
                and query.get("code_challenge_method") == "S256"
                and query.get("code_challenge")
            )
            if not ok:
                self._json(400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            state.codes[code] = {k: query.get(k, "") for k in ("redirect_uri", "code_challenge", "nonce")}
            self.send_response(302)
            self.send_header(
                "Location", f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            )
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _verify_device(self, query: dict[str, str]) -> None:
            """The professional's step on another device: CPS authentication, then approve or deny."""
            grants = [g for g in state.devices.values() if g["user_code"] == query.get("user_code")]
            if not grants or query.get("decision") not in ("approve", "deny"):
                self._json(400, {"error": "invalid_request"})
                return
            grants[0]["status"] = "approved" if query["decision"] == "approve" else "denied"
            self._json(200, {"status": grants[0]["status"]})

        def _device_authorization(self, form: dict[str, str]) -> None:
            device_code, user_code = (
                secrets.token_urlsafe(24),
                f"{secrets.token_hex(2)}-{secrets.token_hex(2)}",
            )
            b = state.behaviour
            state.devices[device_code] = {
                "user_code": user_code.upper(),
                "status": "pending",
                "expires_at": time.time() + b.device_expires_in,
            }
            self._json(200, {
                "device_code": device_code,
                "user_code": user_code.upper(),
                "verification_uri": f"{state.issuer}/device",
                "verification_uri_complete": f"{state.issuer}/device?user_code={user_code.upper()}",
                "expires_in": b.device_expires_in,
                "interval": b.device_interval,
            })  # fmt: skip

        def _device_token(self, form: dict[str, str]) -> None:
            state.polls += 1
            grant = state.devices.get(form.get("device_code", ""))
            if grant is None:
                self._json(400, {"error": "invalid_grant"})
            elif state.behaviour.slow_down_polls > 0:
                state.behaviour.slow_down_polls -= 1
                self._json(400, {"error": "slow_down"})
            elif grant["expires_at"] <= time.time():
                self._json(400, {"error": "expired_token"})
            elif grant["status"] == "pending":
                self._json(400, {"error": "authorization_pending"})
            elif grant["status"] == "denied":
                self._json(400, {"error": "access_denied"})
            else:
                del state.devices[form["device_code"]]  # a device code is good once
                self._tokens(None)

        def _tokens(self, nonce: str | None) -> None:
            self._json(200, {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": state.behaviour.lifetime_s,
                "id_token": state.id_token(nonce),
            })  # fmt: skip

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path not in ("/token", "/device_authorization"):
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._json(401, {"error": "invalid_client"})
                return
            if path == "/device_authorization":
                self._device_authorization(form)
                return
            if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
                self._device_token(form)
                return
            grant = state.codes.pop(form.get("code", ""), None)  # a code is good once
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if (
                form.get("grant_type") != "authorization_code"
                or grant is None
                or grant["redirect_uri"] != form.get("redirect_uri")
                or grant["code_challenge"] != challenge
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            self._tokens(grant["nonce"] or None)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


class OpenIdProvider:
    def __init__(self) -> None:
        self.state = ProviderState()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.state.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self.state.issuer

    def __enter__(self) -> OpenIdProvider:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "RIS_PSC_ISSUER": self.issuer,
            "RIS_PSC_CLIENT_ID": CLIENT_ID,
            "RIS_PSC_CLIENT_SECRET": CLIENT_SECRET,
            **extra,
        }
