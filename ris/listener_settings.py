"""Site settings of the inbound MLLP listeners (PAM-FR identity feed, ZAM receipts): limits, charset, TLS
and the allowlist of senders, one set per listener (`SiteSettings.listeners`).

`ris up` starts both listeners with them; `ris identity listen` takes the PAM-FR one from the running
engine's saved settings, its options overriding. The defaults are the ones of `ris.hl7v2.mllp.Limits`:
an empty allowlist lets anyone send, which suits a single box on loopback only (docs/operations-security.md).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ris.hl7v2.inbound import Allowlist
from ris.hl7v2.mllp import CHARSETS, Limits, Tls

MB = 1024 * 1024
DEFAULTS = Limits()


class ListenerSettingsError(ValueError):
    """A setting that cannot be applied where the listener runs; the message names it."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListenerTls(_Settings):
    """TLS 1.2+ with the listener's certificate; with `client_ca`, peers must present one it signed."""

    cert: Path = Field(description="Server certificate (PEM)")
    key: Path = Field(description="Private key of the certificate (PEM, no passphrase)")
    client_ca: Path | None = Field(None, description="CA of the client certificates; empty: none asked")

    def config(self, where: str) -> Tls:
        """Checked when the listener starts, on its machine (settings are saved from anywhere)."""
        for name in ("cert", "key", "client_ca"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ListenerSettingsError(f"{where}.tls.{name}: {path} is not a readable file")
        return Tls(self.cert, self.key, self.client_ca)


class ListenerAllowlist(_Settings):
    """Who may send; each list left empty allows anyone on its criterion."""

    senders: list[str] = Field(default_factory=list, description="MSH-3, or MSH-3^MSH-4, allowed to send")
    peers: list[str] = Field(
        default_factory=list, description="Addresses or CIDR networks allowed to connect"
    )
    certificate_cns: list[str] = Field(
        default_factory=list, description="Subject CN of the client certificates allowed (with TLS)"
    )

    @field_validator("peers")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or a CIDR network") from None
        return networks

    @field_validator("senders", "certificate_cns")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("an empty name allows nobody: remove it")
        return [item.strip() for item in value]


class Listener(_Settings):
    """One MLLP listener's settings."""

    idle_timeout_seconds: float = Field(
        DEFAULTS.idle_timeout, gt=0, le=86_400, description="A link silent this long is closed"
    )
    max_connections: int = Field(DEFAULTS.max_connections, ge=1, le=10_000, description="Links open at once")
    max_message_mb: float = Field(DEFAULTS.max_message / MB, gt=0, le=1024, description="Largest frame (MB)")
    max_buffered_mb: float = Field(
        DEFAULTS.max_buffered / MB, gt=0, le=16_384, description="Bytes held for all links together (MB)"
    )
    charset: Literal[tuple(CHARSETS)] = Field(  # type: ignore[valid-type]
        "UNICODE UTF-8", description="HL7 table 0211 name used when a message leaves MSH-18 empty"
    )
    tls: ListenerTls | None = None
    allow: ListenerAllowlist = Field(default_factory=ListenerAllowlist)

    def options(self, where: str = "listener") -> dict[str, Any]:
        """The keyword arguments `PamIntake` and `ZamListener` take; `where` names it in errors."""
        return {
            "limits": Limits(
                idle_timeout=self.idle_timeout_seconds,
                max_connections=self.max_connections,
                max_message=int(self.max_message_mb * MB),
                max_buffered=int(self.max_buffered_mb * MB),
            ),
            "tls": self.tls.config(where) if self.tls else None,
            "allowlist": Allowlist(
                frozenset(self.allow.senders), tuple(self.allow.peers), frozenset(self.allow.certificate_cns)
            ),
            "charset": CHARSETS[self.charset],
        }


class ListenerSettings(_Settings):
    pam: Listener = Field(default_factory=Listener, description="PAM-FR feed (`ris identity listen`)")
    zam: Listener = Field(default_factory=Listener, description="ZAM receipts from the PFI")

    def for_pam(self) -> dict[str, Any]:
        return self.pam.options("listeners.pam")

    def for_zam(self) -> dict[str, Any]:
        return self.zam.options("listeners.zam")
