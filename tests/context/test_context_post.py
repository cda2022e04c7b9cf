"""The DMP contextual call (RIS.DMP.04–05, TD0.9) is a POST: the INS and the strict traits travel in the
body of a form the browser posts at once, served once by a loopback page; they never appear in an address,
the terminal or a log, and the page is gone once served. The PACS viewer keeps the call its site
configures (GET by default)."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest
from lxml import html
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from ris.identity import contextual_calls as context_calls
from ris.site.call_targets import ContextCalls, ContextCallTarget
from ris.store.db import session_scope
from tests import factories

RPPS = factories.RADIOLOGIST_RPPS
INS = "279035121518989"  # the test patient's matricule (factories.patient)
DMP_URL = "https://dmp-web-ps.test/ps/dossier-patient?fonction=dossier"
PACS_URL = "https://viewer.imagerie-demo.test/open"


def _settings() -> ContextCalls:
    settings = ContextCalls()
    settings.dmp.url, settings.pacs.url = DMP_URL, PACS_URL
    return settings


def _form(page: str) -> tuple[str, str, dict[str, str]]:
    """(method, action, fields) of the page's one form, as a browser reads it."""
    [form] = html.fromstring(page).forms
    return form.method.lower(), form.action, dict(form.form_values())


def test_the_dmp_call_is_a_form_whose_address_carries_no_datum(session):
    bundle = factories.validated_report(session, copies=0)
    call = context_calls.build(session, bundle.report.id, "dmp", _settings(), ps_rpps=RPPS)
    method, action, fields = _form(context_calls.form_page(call, "n0nce"))
    assert (method, action) == ("post", DMP_URL)  # the site's constant parameters may stay in the address
    assert fields["ins"] == INS and fields["nom"] == "PAT-TROIS" and fields["rpps"] == RPPS
    with pytest.raises(ValueError, match="is a POST: its data never go in an address"):
        _ = call.url


def test_the_form_escapes_every_value(session):
    patient = factories.patient(session, birth_name="O'BRIEN<\"&>", first_birth_given_name="ÉLISE")
    bundle = factories.validated_report(session, patient_row=patient, copies=0)
    call = context_calls.build(session, bundle.report.id, "dmp", _settings(), ps_rpps=RPPS)
    page = context_calls.form_page(call, 'x"><script>')
    assert "O'BRIEN<\"&>" not in page and '"><script>' not in page
    assert _form(page)[2]["nom"] == "O'BRIEN<\"&>"


def test_a_dmp_call_by_get_is_refused_when_the_settings_are_saved():
    with pytest.raises(ValidationError, match=r"dmp.method must be post \(TD0.9"):
        ContextCalls(
            dmp=ContextCallTarget(url=DMP_URL, method="get", parameters={"ins": "ins", "o": "ins_oid"})
        )
    assert ContextCalls().dmp.method == "post" and ContextCalls().pacs.method == "get"


@pytest.fixture
async def site_with_targets(prefect_server):
    from blocks import DEFAULT_NAME
    from blocks.site import SiteSettingsBlock
    from ris.site.settings import SiteSettings

    await SiteSettingsBlock(settings=SiteSettings(context_calls=_settings())).asave(
        DEFAULT_NAME, overwrite=True
    )


class FakeBrowser:
    """What `webbrowser.open` would start: a browser fetching the address over a real socket."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.responses: list[httpx.Response] = []
        self._threads: list[threading.Thread] = []

    def open(self, url: str) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=lambda: self.responses.append(httpx.get(url, timeout=10)))
        thread.start()
        self._threads.append(thread)
        return True

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


def test_cli_serves_the_dmp_form_once_and_prints_no_ins(site_with_targets, acting_users, monkeypatch, caplog):
    browser = FakeBrowser()
    monkeypatch.setattr("cli.context.webbrowser.open", browser.open)
    with session_scope() as session:
        report_id = factories.validated_report(session, copies=0).report.id
    caplog.set_level(logging.DEBUG)
    done = CliRunner().invoke(app, ["context-url", report_id, "--target", "dmp", "--by", RPPS])
    browser.join()
    assert done.exit_code == 0, done.output
    [url] = browser.opened
    assert url.startswith("http://127.0.0.1:") and INS not in url
    [page] = browser.responses
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert (
        page.headers["referrer-policy"] == "no-referrer"
        and "form-action https:" in page.headers["content-security-policy"]
    )
    method, action, fields = _form(page.text)
    assert (method, action, fields["ins"], fields["oid"]) == ("post", DMP_URL, INS, "1.2.250.1.213.1.4.10")
    assert done.stdout.splitlines() == [
        f"dmp call for {report_id}: {url} (opened in your browser; served once, within 60 s)",
        f"dmp call for {report_id}: page served to the browser and gone",
    ]
    assert INS not in done.output and "PAT-TROIS" not in done.output
    assert not any(INS in record.getMessage() for record in caplog.records)
    with pytest.raises(httpx.ConnectError):  # served once: the page and its server are gone
        httpx.get(url, timeout=2)


def test_cli_gives_up_a_page_nobody_opened_and_says_so(site_with_targets, acting_users):
    with session_scope() as session:
        report_id = factories.validated_report(session, copies=0).report.id
    done = CliRunner().invoke(
        app, ["context-url", report_id, "--target", "dmp", "--by", RPPS, "--no-browser", "--wait", "1"]
    )
    assert done.exit_code == 1
    assert "(open it in your browser; served once, within 1 s)" in done.stdout and INS not in done.output
    assert done.stderr.strip().splitlines() == [
        "error: the dmp call's page was not opened within 1 s and is gone: nothing was sent"
    ]


def test_the_pacs_call_stays_the_get_its_site_configures(site_with_targets, acting_users):
    with session_scope() as session:
        report_id = factories.validated_report(session, copies=0).report.id
    done = CliRunner().invoke(app, ["context-url", report_id, "--target", "pacs", "--by", RPPS])
    assert done.exit_code == 0 and done.stdout.startswith(PACS_URL + "?") and f"ins={INS}" in done.stdout
