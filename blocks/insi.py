"""The INSi teleservice endpoint as a Prefect Block (saved as `default` by `ris up` or an administrator)."""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks import DEFAULT_NAME
from blocks.certificates import load_certificate_pool
from ris.auth.certificates import for_acting, for_insi
from ris.identity.insi_client import InsiClient, InsiSettings, bundled_wsdl
from ris.site.insi_verification import VerificationContract
from ris.tls import TlsSettings


class InsiEndpoint(Block):
    _block_type_name = "RIS INSi Endpoint"
    _block_type_slug = "ris-insi-endpoint"
    _description = "CNAM INSi teleservice: URL, WSDL, software identity (IDAM, LPS) and ORG certificate."
    _documentation_url = "https://industriels.sesam-vitale.fr/group/teleservice-insi"
    _code_example = """
```python
from blocks.insi import InsiEndpoint

insi_endpoint_block = InsiEndpoint.load("BLOCK_NAME")
async with insi_endpoint_block.client() as client:
    ...
```"""

    url: str = Field(description="Endpoint, e.g. the qualification URL in certificate mode.")
    wsdl_path: Path = Field(
        default_factory=bundled_wsdl,
        description="DESIR_ICIR_EXP_1.5.0.wsdl with its xsd/ folder beside it (default: the engine's copy).",
    )
    idam: str = Field(description="CNDA authorisation number of the software (ContexteLPS/LPS/IDAM).")
    lps_name: str = Field("RIS-ENGINE", description="Software name sent in ContexteLPS.")
    lps_version: str = Field("0.1.0", description="Software version sent in ContexteLPS.")
    lps_instance: str = Field(default_factory=lambda: str(uuid.uuid4()), description="uuid of this install.")
    emetteur: str = Field("", description="Emetteur of ContexteLPS (empty: none).")
    cert_path: Path | None = Field(None, description="IGC-Santé ORG certificate, CN INSI-AUTO or INSI-MANU.")
    key_path: Path | None = Field(None, description="Private key of the ORG certificate.")
    key_password: SecretStr | None = Field(None, description="Passphrase of the private key.")
    ca_path: Path | None = Field(
        None,
        description="Trust chain of the server (AC IGC-SANTE); its revocation is checked (OCSP, CRL) as the "
        "site settings' `tls` says.",
    )
    timeout: float = Field(10.0, gt=0, description="Timeout of one call, in seconds.")

    def settings(
        self, verification: VerificationContract | None = None, tls: TlsSettings | None = None
    ) -> InsiSettings:
        """The client's settings; `verification`: the site's unit verification contract (site settings
        `insi_verification`), the provisional one when not given; `tls`: the site settings' revocation
        checking (hard-fail when not given)."""
        return InsiSettings(
            url=self.url,
            wsdl_path=Path(self.wsdl_path),
            idam=self.idam,
            lps_name=self.lps_name,
            lps_version=self.lps_version,
            lps_instance=self.lps_instance,
            emetteur=self.emetteur,
            cert_path=self.cert_path,
            key_path=self.key_path,
            key_password=self.key_password.get_secret_value() if self.key_password else None,
            ca_path=self.ca_path,
            timeout=self.timeout,
            verification=verification or VerificationContract(),
            tls=tls or TlsSettings(),
        )

    def client(
        self, verification: VerificationContract | None = None, tls: TlsSettings | None = None
    ) -> InsiClient:
        """A ready client with the site's own certificate (automatic calls: INSI-AUTO); close it with
        `await client.aclose()` (or `async with`)."""
        return InsiClient(self.settings(verification, tls))

    async def client_for(self, acting_rpps: str | None, tls: TlsSettings | None = None) -> InsiClient:
        """A client calling with the acting radiologist's RPPS-Rang certificate when the site keeps a pool
        (an SCM, RIS.AUTH.02), else with this block's certificate; CertificateUnavailable before any call
        when the pool has no usable certificate for them."""
        certificate = for_acting(await load_certificate_pool(), acting_rpps)
        if certificate is None:
            return self.client(tls=tls)
        return InsiClient(for_insi(self.settings(tls=tls), certificate))


async def load_insi_endpoint(name: str = DEFAULT_NAME) -> InsiEndpoint | None:
    """The saved endpoint, or None when INSi is not configured on this site."""
    try:
        return await InsiEndpoint.aload(name)
    except ValueError:
        return None
