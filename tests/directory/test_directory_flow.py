"""The scheduled directory import (RIS.ANN.01, RIS.ANN.04): its deployment's frequency in prefect.yaml, and
a flow run that downloads the published zip over HTTP (a real server on loopback) and imports it."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator

import pytest
from sqlmodel import select

from deployments import DIRECTORY_IMPORT_DEPLOYMENT, ENTRYPOINTS, specs
from flows.names import DIRECTORY_IMPORT_FLOW
from ris.directory.synthetic import SAMPLE_MAILBOXES, SAMPLE_PERSONS
from ris.store.models import DirectoryMailbox, DirectoryPerson


def test_the_import_runs_nightly_in_paris_time_one_at_a_time_from_the_published_extractions():
    spec = next(s for s in specs() if s["entrypoint"] == ENTRYPOINTS[DIRECTORY_IMPORT_FLOW])
    assert f"directory-import/{spec['name']}" == DIRECTORY_IMPORT_DEPLOYMENT
    assert spec["schedules"] == [{"cron": "30 3 * * *", "timezone": "Europe/Paris"}]
    assert spec["concurrency_limit"] == 1
    assert spec["parameters"]["persons"].startswith("https://service.annuaire.sante.fr/")


@pytest.fixture
def published(tmp_path) -> Iterator[str]:
    """annuaire.sante.fr stand-in: the zipped extraction served over HTTP on loopback."""
    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "PS_LibreAcces.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLE_PERSONS, SAMPLE_PERSONS.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_flow_run_downloads_the_zip_and_imports_both_extractions(prefect_server, session, published):
    from flows.directory_import import directory_import

    state = await directory_import(
        persons=f"{published}/PS_LibreAcces.zip", mailboxes=str(SAMPLE_MAILBOXES), return_state=True
    )
    result = await state.aresult()
    assert result["persons"]["created"] == 5 and result["persons"]["refused"] == 0
    assert result["mailboxes"]["created"] == 5
    assert len(session.exec(select(DirectoryPerson)).all()) == 5
    assert len(session.exec(select(DirectoryMailbox)).all()) == 5

    missing = await directory_import(persons=f"{published}/absent.zip", return_state=True)
    assert missing.is_failed()
    with pytest.raises(Exception, match="download failed"):
        await missing.aresult()
