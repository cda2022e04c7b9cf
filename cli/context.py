"""`ris context-url ID --target dmp|pacs`: the outgoing contextual call (RIS.DMP.04–05, RIS.AC.01) for the
patient a report id or an IPP names, with the full INS and the strict traits, for a qualified identity only.

A POST call (the DMP web PS, TD0.9) opens in the browser through a one-shot page on loopback: an
unguessable address that serves, once, a form the browser posts at once to the target; the page is gone
once served, or after `--wait` seconds. The INS travels only in that page's body: never in an address, the
terminal or a log, and never on disk. A GET call (a PACS viewer whose contract says so) prints its address,
which carries the data, to the professional who asked only. The call is audited without the INS."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer

import typer

from blocks.site import load_site_settings
from cli.acting import acting
from cli.common import fail, require_engine_api
from ris.auth import roles
from ris.identity import contextual_calls as context_calls
from ris.store.db import session_scope


class OneShotPage:
    """A page served once on 127.0.0.1 at a random path, then gone (or gone unserved after the wait).
    Nothing is logged: the path is the page's only key."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.path = "/" + secrets.token_urlsafe(24)
        self.served = threading.Event()
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != page.path or page.served.is_set():
                    self.send_error(404)
                    return
                page.served.set()
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._server.timeout = 0.2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def serve(self, wait_s: float) -> bool:
        """Serve until the page went out or `wait_s` passed; then close. True when it was served."""
        deadline = time.monotonic() + wait_s
        try:
            while not self.served.is_set() and time.monotonic() < deadline:
                self._server.handle_request()
        finally:
            self._server.server_close()
        return self.served.is_set()


def _post_page(call: context_calls.ContextCall) -> OneShotPage:
    nonce = secrets.token_urlsafe(16)
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        # Only our one script runs, and the form may only go to an https address.
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; form-action https:",
    }
    return OneShotPage(context_calls.form_page(call, nonce).encode(), headers)


def context_url(
    some_id: str = typer.Argument(..., metavar="ID", help="A report id or a patient IPP"),
    target: str = typer.Option(..., "--target", help="dmp (the DMP web PS) or pacs (the site's viewer)"),
    by: str | None = typer.Option(None, "--by", help="RPPS of the professional, when not logged in"),
    browser: bool = typer.Option(
        True, "--browser/--no-browser", help="Open a POST call in the browser; --no-browser: print its page"
    ),
    wait: float = typer.Option(60, "--wait", min=1, help="Seconds a POST call's one-shot page waits"),
) -> None:
    """Open the contextual call: a POST call (DMP) through a one-shot local page, a GET call (PACS, when
    configured so) by printing its address (it carries the INS: for your eyes only)."""
    if target not in context_calls.TARGETS:
        fail(f"--target {target!r}: one of {', '.join(context_calls.TARGETS)}")
    rpps = acting(by, roles.CONTEXT_CALL).rpps
    require_engine_api("a contextual call")  # the targets are site settings
    settings = asyncio.run(load_site_settings())
    with session_scope() as session:
        try:
            call = context_calls.build(session, some_id, target, settings.context_calls, ps_rpps=rpps)
        except context_calls.ContextCallRefused as exc:
            fail(str(exc))
    if call.method == "get":
        typer.echo(call.url)
        return
    page = _post_page(call)
    opened = browser and webbrowser.open(page.url)
    how = "opened in your browser" if opened else "open it in your browser"
    typer.echo(f"{target} call for {some_id}: {page.url} ({how}; served once, within {wait:g} s)")
    if not page.serve(wait):
        fail(f"the {target} call's page was not opened within {wait:g} s and is gone: nothing was sent")
    typer.echo(f"{target} call for {some_id}: page served to the browser and gone")


def register(app: typer.Typer) -> None:
    app.command("context-url")(context_url)
