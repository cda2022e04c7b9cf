"""The PFI endpoint block: Prefect's standard block checks, saving and loading, and its ready client."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks import BlockNotSaved
from blocks.pfi import PfiEndpoint, load_pfi_endpoint
from ris.channels.hl7.client import PfiClient


class TestPfiEndpoint(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return PfiEndpoint

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # The suite fetches the logo over the network; the engine's blocks carry none, on purpose.
        assert block._logo_url is None


@pytest.mark.slow
async def test_saved_endpoint_gives_a_ready_client(prefect_server) -> None:
    await PfiEndpoint(host="127.0.0.1", port=12575, ack_timeout_s=4).save("hl7-block-test", overwrite=True)
    loaded = await load_pfi_endpoint("hl7-block-test")
    assert loaded.client() == PfiClient("127.0.0.1", 12575, 4.0)
    with pytest.raises(BlockNotSaved, match=r"RIS PFI Endpoint block 'never-saved' is not saved"):
        await load_pfi_endpoint("never-saved")  # never a silent default address
