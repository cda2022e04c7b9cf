"""`ris login` / `ris logout`: Pro Santé Connect login for the actions a professional takes through the
engine (RIS.PSC.01). The browser returns to a one-shot listener on loopback, or, with `--device`, the
professional enters a code on another device (phone, workstation) while the command waits; the checked ID
token is kept in a 0600 file of the data folder until it expires."""

from __future__ import annotations

import webbrowser

import typer

from cli.common import fail
from ris.auth import login as psc
from ris.auth.settings import AuthConfigError, PscSettings
from ris.auth.tokens import ProviderUnreachable, TokenRejected
from ris.site.engine import EngineConfig


def _settings() -> PscSettings:
    try:
        settings = PscSettings.from_env()
    except AuthConfigError as exc:
        fail(str(exc))
    if settings is None:
        fail("Pro Santé Connect is not configured on this site: set RIS_PSC_ISSUER and RIS_PSC_CLIENT_ID")
    return settings


def login(
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the address instead of opening it"),
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for the login to complete"),
    device: bool = typer.Option(
        False, "--device", help="No browser here: enter a code on another device (RFC 8628 device flow)"
    ),
) -> None:
    """Log in with Pro Santé Connect (CPS card or e-CPS) for validate, announce, replace and delete."""
    settings = _settings()
    data_dir = EngineConfig.from_env().data_dir

    def show(url: str) -> None:
        typer.echo(f"Log in with Pro Santé Connect at:\n{url}", err=False)
        if not no_browser:
            webbrowser.open(url)

    def show_code(code: psc.DeviceCode) -> None:
        typer.echo(
            f"On another device, open {code.verification_uri} and enter the code {code.user_code}"
            f" (valid {code.expires_in_s / 60:.0f} min)"
        )
        if code.verification_uri_complete:
            typer.echo(f"or open directly:\n{code.verification_uri_complete}")
        typer.echo("waiting for the login...")

    try:
        if device:
            who = psc.login_device(settings, show_code, data_dir=data_dir, timeout_s=timeout)
        else:
            who = psc.login(settings, show, data_dir=data_dir, timeout_s=timeout)
    except (psc.LoginFailed, TokenRejected, ProviderUnreachable) as exc:
        fail(f"login failed: {exc}")
    until = who.expires_at.astimezone().strftime("%H:%M:%S")
    typer.echo(f"logged in as RPPS {who.rpps} ({who.acr}) until {until}")


def logout() -> None:
    """Forget the Pro Santé Connect login kept on this machine."""
    removed = psc.logout(EngineConfig.from_env().data_dir)
    typer.echo("logged out" if removed else "nobody was logged in")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
