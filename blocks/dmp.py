"""The DMP endpoints the engine feeds on the direct route (ITI-41 repository, ITI-57 / ITI-62 registry),
the structure's client certificate that opens the TLS session and signs the VIHF, as one Prefect Block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks import DEFAULT_NAME, load_saved
from ris.channels.dmp.client import DmpConfig
from ris.channels.dmp.transactions import Signing
from ris.tls import TlsSettings


class DmpEndpoint(Block):
    _block_type_name = "RIS DMP Endpoint"
    _block_type_slug = "ris-dmp-endpoint"
    _description = (
        "The DMP's XDS.b endpoints (HTTPS, SOAP 1.2) and the structure's certificate with its key "
        "passphrase: TLS client authentication and VIHF signature, for the DMP copies the engine submits."
    )
    _documentation_url = "https://www.python-httpx.org/advanced/ssl/"
    _code_example = """
```python
from blocks.dmp import DmpEndpoint
from ris.channels.dmp.client import post

endpoint = DmpEndpoint.load("BLOCK_NAME")
await post(request, endpoint.config())
```"""

    repository_url: str = Field(
        pattern=r"^https://", description="ITI-41 Provide and Register endpoint (document repository)."
    )
    registry_url: str | None = Field(
        None, pattern=r"^https://", description="ITI-57 / ITI-62 endpoint; empty: the repository URL."
    )
    ca_bundle: str | None = Field(
        None,
        description="PEM file of the CAs the DMP server is checked against (its revocation too: OCSP, CRL, "
        "as the site settings' `tls` says).",
    )
    client_cert: str = Field(
        description="PEM certificate of the structure (ORG): TLS client and VIHF signer."
    )
    client_key: str = Field(description="PEM private key of the certificate.")
    key_passphrase: SecretStr | None = Field(None, description="Passphrase of the key.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of each request, in seconds.")

    def config(self, tls: TlsSettings | None = None) -> DmpConfig:
        """The endpoint settings; `tls`: the site settings' revocation checking (hard-fail when not given)."""
        return DmpConfig(
            repository_url=self.repository_url,
            registry_url=self.registry_url or self.repository_url,
            ca_bundle=self.ca_bundle,
            client_cert=self.client_cert,
            client_key=self.client_key,
            key_passphrase=self.key_passphrase.get_secret_value() if self.key_passphrase else None,
            timeout_s=self.timeout_s,
            tls=tls or TlsSettings(),
        )

    def signing(self) -> Signing:
        passphrase = self.key_passphrase.get_secret_value() if self.key_passphrase else None
        return Signing.from_files(self.client_cert, self.client_key, passphrase)


async def load_dmp_endpoint(name: str = DEFAULT_NAME) -> DmpEndpoint:
    """The saved endpoint (once per flow run); BlockNotSaved when none was saved."""
    return await load_saved(DmpEndpoint, name)
