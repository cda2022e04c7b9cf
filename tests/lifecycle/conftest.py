"""The sandbox PFI sending its receipts to our ZAM listener, with the endpoint blocks pointing at it."""

from __future__ import annotations

import pytest

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from ris.channels.hl7.listener import ZamListener
from sandbox.pfi import PfiSandbox
from tests import factories


@pytest.fixture
async def pfi(prefect_server, db_url):
    """The sandbox PFI sending its receipts to our listener, and the endpoint blocks pointing at it."""
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as peer,
    ):
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1", port=peer.port, receipt_port=listener.port, ack_timeout_s=10
        ).asave(DEFAULT_NAME, overwrite=True)
        yield peer
