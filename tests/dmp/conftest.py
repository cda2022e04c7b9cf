"""Direct DMP: one sandbox DMP (HTTPS, mutual TLS) for the whole module, documents built and stored, the
site routing the DMP "direct" (the PFI relays nothing but MSSanté)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import Session

from ris import documents
from ris.channels.dmp.client import DmpConfig
from ris.channels.dmp.transactions import Signing
from ris.lifecycle import distribution
from ris.site.settings import DmpSending, SiteSettings
from ris.store import deliveries
from ris.store.documents import store
from ris.store.models import Channel, Delivery
from ris.store.reports import ReportBundle
from sandbox.dmp import CLIENT_PASSPHRASE, DmpSandbox

NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)


def direct_settings(**dmp) -> SiteSettings:
    return SiteSettings(dmp=DmpSending(route="direct", **dmp))


@pytest.fixture(scope="module")
def dmp_server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dmp")
    with DmpSandbox(folder=base / "dmp-received", tls_dir=base / "dmp-tls") as server:
        yield server


@pytest.fixture
def dmp(dmp_server: DmpSandbox) -> DmpSandbox:
    """The module's sandbox with its switches off again."""
    dmp_server.faults = dmp_server.lose_responses = 0
    dmp_server.delay_s = 0.0
    dmp_server.closed_patients.clear()
    dmp_server.unknown_patients.clear()
    return dmp_server


def config_for(server: DmpSandbox, **overrides) -> DmpConfig:
    values = dict(
        repository_url=server.url,
        registry_url=server.registry_url,
        ca_bundle=str(server.pki.ca),
        client_cert=str(server.pki.client_cert),
        client_key=str(server.pki.client_key),
        key_passphrase=CLIENT_PASSPHRASE.decode(),
        timeout_s=10,
    )
    values.update(overrides)
    return DmpConfig(**values)


def signing_for(server: DmpSandbox) -> Signing:
    return Signing.from_files(
        str(server.pki.client_cert), str(server.pki.client_key), CLIENT_PASSPHRASE.decode()
    )


def with_documents(session: Session, bundle: ReportBundle, settings: SiteSettings) -> bytes:
    built = documents.build(bundle, settings)
    store(session, bundle.report.id, bundle.version.version, built)
    session.commit()
    return built.cda


def dmp_rows(session: Session, bundle: ReportBundle, settings: SiteSettings) -> list[Delivery]:
    rid, version = bundle.report.id, bundle.version.version
    distribution.plan_version(
        session,
        rid,
        version,
        pfi=settings.hl7.enabled,
        direct=distribution.direct_channels(settings),
        dmp=settings.dmp,
    )
    session.commit()
    return [r for r in deliveries.for_version(session, rid, version) if r.channel is Channel.dmp]


async def save_dmp_endpoint(dmp: DmpSandbox) -> None:
    """The site's DMP endpoint block pointing at the sandbox, with the structure's own certificate."""
    from blocks import DEFAULT_NAME
    from blocks.dmp import DmpEndpoint

    config = config_for(dmp)
    await DmpEndpoint(
        repository_url=config.repository_url,
        registry_url=config.registry_url,
        ca_bundle=config.ca_bundle,
        client_cert=config.client_cert,
        client_key=config.client_key,
        key_passphrase=config.key_passphrase,
        timeout_s=config.timeout_s,
    ).asave(DEFAULT_NAME, overwrite=True)


@pytest.fixture
async def direct_site(prefect_server, db_url, dmp: DmpSandbox):
    """The site routing the DMP direct, the sandbox PFI for the rest, the blocks pointing at the peers."""
    from blocks import DEFAULT_NAME
    from blocks.pfi import PfiEndpoint
    from blocks.site import SiteSettingsBlock
    from ris.channels.hl7.listener import ZamListener
    from sandbox.pfi import PfiSandbox
    from tests import factories

    settings = direct_settings()
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as peer,
    ):
        await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1", port=peer.port, receipt_port=listener.port, ack_timeout_s=10
        ).asave(DEFAULT_NAME, overwrite=True)
        await save_dmp_endpoint(dmp)
        yield dmp


def folder(server: DmpSandbox) -> Path:
    return server.folder
