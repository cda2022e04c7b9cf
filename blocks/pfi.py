"""The integration platform (PFI) endpoint as a Prefect Block: where to send HL7 and where ZAM come back."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from blocks import DEFAULT_NAME, load_saved
from ris.channels.hl7.client import PfiClient
from ris.site.listeners import ConfiguredPeer


class PfiEndpoint(Block):
    _block_type_name = "RIS PFI Endpoint"
    _block_type_slug = "ris-pfi-endpoint"
    _description = "MLLP address of the integration platform (PFI) and of the RIS's ZAM receipt listener."
    _documentation_url = "https://interop.esante.gouv.fr/ig/hl7v2/trans-cda-r2"
    _code_example = """
```python
from blocks.pfi import PfiEndpoint

pfi_endpoint_block = PfiEndpoint.load("BLOCK_NAME")
ack = await pfi_endpoint_block.client().send(message, control_id)
```"""

    host: str = Field(description="PFI MLLP host.")
    port: int = Field(ge=1, le=65535, description="PFI MLLP port.")
    ack_timeout_s: float = Field(
        30.0, gt=0, description="How long to wait for the ACK of one message, in seconds."
    )
    receipt_host: str = Field("127.0.0.1", description="Interface the ZAM receipt listener binds to.")
    receipt_port: int = Field(2576, ge=0, le=65535, description="Port the PFI sends its ZAM receipts to.")
    application: str | None = Field(
        None,
        min_length=1,
        description="MSH-3 of the PFI's own messages (its ZAM receipts): the ZAM listener accepts no other.",
    )
    facility: str | None = Field(None, min_length=1, description="MSH-4 of the PFI's own messages.")
    certificate_cn: str | None = Field(
        None,
        min_length=1,
        description="Subject CN of the PFI's client certificate, when the listeners ask for one (TLS with "
        "client_ca): then the certificate, not the address, says it is the PFI.",
    )

    def client(self) -> PfiClient:
        return PfiClient(self.host, self.port, self.ack_timeout_s)

    def peer(self) -> ConfiguredPeer:
        """The PFI as the engine's listeners know it: its application^facility, address and certificate."""
        sender = f"{self.application}^{self.facility}" if self.application and self.facility else None
        return ConfiguredPeer(
            frozenset({sender} - {None}), self.host, self.certificate_cn, f"the PFI block ({self.host})"
        )


async def load_pfi_endpoint(name: str = DEFAULT_NAME) -> PfiEndpoint:
    """The saved endpoint (once per flow run); BlockNotSaved when none was saved."""
    return await load_saved(PfiEndpoint, name)
