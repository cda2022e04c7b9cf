"""Site settings of the inbound MLLP listeners (PAM-FR identity feed, ZAM receipts): limits, charset, TLS
and the allowlist of senders, one set per listener (`SiteSettings.listeners`).

`ris up` starts both listeners with them; `ris identity listen` takes the PAM-FR one from the running
engine's saved settings, its options overriding. The limits' defaults are the ones of
`ris.hl7v2.mllp.Limits`. Who may send defaults to the peer the site configured (`ConfiguredPeer`, from the
PFI block), criterion by criterion where the allowlist leaves one empty: on the ZAM listener its
application^facility (MSH-3^MSH-4); on both, the link: its certificate's CN when the listener asks for
client certificates (a claimed MSH-3 alone is not an identity then), otherwise its address; this machine
only (loopback) when no peer is configured (docs/operations-security.md).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ris.hl7v2.inbound import Allowlist
from ris.hl7v2.mllp import CHARSETS, Limits, Tls

MB = 1024 * 1024
DEFAULTS = Limits()
LOOPBACK = ("127.0.0.0/8", "::1/128")  # where the peers are when the site configured none


@dataclass(frozen=True)
class ConfiguredPeer:
    """Who the site configured at the other end of a listener (the PFI block): what the listener accepts
    on each criterion its allowlist leaves empty. `what` names where it is configured, in errors."""

    senders: frozenset[str] = frozenset()  # MSH-3^MSH-4 (or MSH-3)
    host: str | None = None  # its address or name (resolved when the listener starts)
    certificate_cn: str | None = None  # the subject CN of its client certificate
    what: str = "the PFI block"


def _addresses(host: str, where: str, what: str) -> tuple[str, ...]:
    """The addresses of a configured host, as networks the allowlist compares a link's address with."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        raise ListenerSettingsError(
            f"{where}.allow.peers: empty, and the host of {what} ({host}) does not resolve "
            f"({exc.strerror or type(exc).__name__}): list the peers' addresses"
        ) from exc
    return tuple(sorted(str(ipaddress.ip_network(address.split("%")[0])) for address in found))


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
    """Who may send; each list left empty takes the configured peer's (`Listener.allowlist`)."""

    senders: list[str] = Field(
        default_factory=list,
        description="MSH-3, or MSH-3^MSH-4, allowed to send (empty: the PFI block's application^facility on "
        "the ZAM listener, any on the PAM-FR one)",
    )
    peers: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR networks allowed to connect (empty: the PFI block's host, or this "
        "machine when none is configured; with tls.client_ca, any: the certificate names the peer)",
    )
    certificate_cns: list[str] = Field(
        default_factory=list,
        description="Subject CN of the client certificates allowed (with tls.client_ca; empty: the PFI "
        "block's certificate_cn)",
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

    def allowlist(
        self, where: str, peer: ConfiguredPeer | None, *, senders_required: bool = False
    ) -> Allowlist:
        """The allowlist, each criterion left empty taken from the configured peer. `senders_required`: a
        listener only that peer's application talks to (ZAM) refuses to start without one."""
        unnamed = f"{peer.what} names no" if peer else "no PFI is configured, hence no"
        peer = peer or ConfiguredPeer()
        senders = frozenset(self.allow.senders) or peer.senders
        if senders_required and not senders:
            raise ListenerSettingsError(
                f"{where}.allow.senders: empty, and {unnamed} sender: set the PFI block's application and "
                "facility (MSH-3, MSH-4 of its messages)"
            )
        cns, peers = frozenset(self.allow.certificate_cns), tuple(self.allow.peers)
        if self.tls is not None and self.tls.client_ca is not None:
            cns = cns or frozenset({peer.certificate_cn} - {None})
            if not cns:
                raise ListenerSettingsError(
                    f"{where}.allow.certificate_cns: empty, and {unnamed} certificate_cn: the listener asks "
                    "for client certificates (tls.client_ca), so it must know whose to accept"
                )
        elif not peers:
            peers = _addresses(peer.host, where, peer.what) if peer.host else LOOPBACK
        return Allowlist(senders, peers, cns)

    def options(
        self, where: str = "listener", peer: ConfiguredPeer | None = None, *, senders_required: bool = False
    ) -> dict[str, Any]:
        """The keyword arguments `PamIntake` and `ZamListener` take; `where` names it in errors, `peer` is
        who the site configured at the other end (see `allowlist`)."""
        return {
            "limits": Limits(
                idle_timeout=self.idle_timeout_seconds,
                max_connections=self.max_connections,
                max_message=int(self.max_message_mb * MB),
                max_buffered=int(self.max_buffered_mb * MB),
            ),
            "tls": self.tls.config(where) if self.tls else None,
            "allowlist": self.allowlist(where, peer, senders_required=senders_required),
            "charset": CHARSETS[self.charset],
        }


class ListenerSettings(_Settings):
    pam: Listener = Field(default_factory=Listener, description="PAM-FR feed (`ris identity listen`)")
    zam: Listener = Field(default_factory=Listener, description="ZAM receipts from the PFI")

    def for_pam(self, peer: ConfiguredPeer | None) -> dict[str, Any]:
        """The identity feed: by default its link must be the configured peer's; the sender named in MSH-3
        is the identity policy's to judge (own domain, trusted, or verified with INSi)."""
        link_only = replace(peer, senders=frozenset()) if peer else None
        return self.pam.options("listeners.pam", link_only)

    def for_zam(self, peer: ConfiguredPeer | None) -> dict[str, Any]:
        """The PFI's receipts: by default its application^facility over its link, nobody else."""
        return self.zam.options("listeners.zam", peer, senders_required=True)
