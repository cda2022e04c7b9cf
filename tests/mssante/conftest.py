"""Direct MSSanté: a site routing both MSSanté channels "direct", documents built and stored, and the
sandbox operator (mutual TLS, DSN) with the operator block pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from ris import documents
from ris.lifecycle import distribution
from ris.site.settings import MssanteSending, SiteSettings
from ris.store.documents import store
from ris.store.models import Delivery
from ris.store.reports import ReportBundle
from sandbox.mssante import CLIENT_PASSPHRASE, MssSandbox


def direct_settings(**mss) -> SiteSettings:
    return SiteSettings(mssante=MssanteSending(route_ps="direct", route_patient="direct", **mss))


def with_documents(session: Session, bundle: ReportBundle, settings: SiteSettings) -> None:
    built = documents.build(bundle, settings)
    store(session, bundle.report.id, bundle.version.version, built)
    session.commit()


def planned(session: Session, bundle: ReportBundle, settings: SiteSettings) -> list[Delivery]:
    """Rows as the planning step makes them, PFI on for the DMP, MSSanté direct."""
    rid, version = bundle.report.id, bundle.version.version
    distribution.plan_version(
        session, rid, version, pfi=settings.hl7.enabled, direct=distribution.direct_channels(settings)
    )
    session.commit()
    from ris.store import deliveries

    return deliveries.for_version(session, rid, version)


@pytest.fixture
def operator(tmp_path: Path):
    with MssSandbox(folder=tmp_path / "mss-received", tls_dir=tmp_path / "mss-tls") as server:
        yield server


async def save_operator(server: MssSandbox, **extra) -> None:
    """The site's operator block pointing at the sandbox, with the structure's own certificate."""
    from blocks import DEFAULT_NAME
    from blocks.mssante import MssanteOperator

    config = operator_config(server)
    await MssanteOperator(
        host=config.host,
        port=config.port,
        ca_bundle=config.ca_bundle,
        client_cert=config.client_cert,
        client_key=config.client_key,
        key_passphrase=config.key_passphrase,
        timeout_s=10,
        **extra,
    ).asave(DEFAULT_NAME, overwrite=True)


def operator_config(server: MssSandbox, **overrides):
    from ris.channels.mssante.smtp import OperatorConfig

    pki = server.mss_pki
    values = dict(
        host="localhost",
        port=server.port,
        ca_bundle=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
        key_passphrase=CLIENT_PASSPHRASE.decode(),
        timeout_s=10,
    )
    values.update(overrides)
    return OperatorConfig(**values)


@pytest.fixture
async def direct_site(prefect_server, db_url, tmp_path: Path):
    """The sandbox PFI (DMP relay) and the sandbox MSSanté operator, with the site routing both MSSanté
    channels direct and the blocks pointing at the peers. Yields the operator."""
    from blocks import DEFAULT_NAME
    from blocks.pfi import PfiEndpoint
    from blocks.site import SiteSettingsBlock
    from ris.channels.hl7.listener import ZamListener
    from sandbox.pfi import PfiSandbox
    from tests import factories

    settings = direct_settings()
    settings.hl7.deletion_notice_mss = True
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as peer,
    ):
        with MssSandbox(
            folder=tmp_path / "mss-received",
            tls_dir=tmp_path / "mss-tls",
            imap_user=settings.mssante.application_mailbox,
        ) as operator:
            await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
            await PfiEndpoint(
                host="127.0.0.1", port=peer.port, receipt_port=listener.port, ack_timeout_s=10
            ).asave(DEFAULT_NAME, overwrite=True)
            await save_operator(
                operator,
                imap_host="localhost",
                imap_port=operator.mailbox.port,
                imap_user=operator.imap_user,
                imap_password=operator.imap_password,
            )
            yield operator
