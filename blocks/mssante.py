"""The MSSanté operator the engine sends through on the direct route, and the structure's ORG client
certificate (RIS.MSS.01-05, RIS.MSS.23), as one Prefect Block."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from blocks import DEFAULT_NAME, load_saved
from ris.channels.mail import client_pair
from ris.channels.mssante.receipts import ImapConfig
from ris.channels.mssante.smtp import OperatorConfig
from ris.tls import TlsSettings


class MssanteOperator(Block):
    _block_type_name = "RIS MSSante Operator"
    _block_type_slug = "ris-mssante-operator"
    _description = (
        "SMTP entry point of the MSSanté operator (TLS 1.2, IGC Santé CA bundle) and the structure's client "
        "certificate with its key passphrase, for the MSSanté copies the engine sends itself."
    )
    _documentation_url = "https://aiosmtplib.readthedocs.io/en/stable/"
    _code_example = """
```python
from blocks.mssante import MssanteOperator
from ris.channels.mssante.smtp import submit

operator = MssanteOperator.load("BLOCK_NAME")
await submit(message, operator.config(), sender=..., recipient=..., envid=...)
```"""

    host: str = Field(description="SMTP host of the MSSanté operator.")
    port: int = Field(587, ge=1, le=65535, description="587 (STARTTLS) or 465 (implicit TLS).")
    security: Literal["starttls", "tls"] = Field("starttls", description="TLS always (RIS.MSS.01).")
    ca_bundle: str | None = Field(
        None, description="PEM file of the IGC Santé roots and intermediates; empty: the system CAs."
    )
    crl_file: str | None = Field(
        None,
        description="PEM CRLs of the IGC Santé chain the site keeps current itself, read before the OCSP "
        "responders and the CRL distribution points of the certificates (revocation, RIS.MSS.06).",
    )
    client_cert: str | None = Field(None, description="PEM ORG certificate of the structure (FINESS/SIRET).")
    client_key: str | None = Field(None, description="PEM private key of the client certificate.")
    key_passphrase: SecretStr | None = Field(None, description="Passphrase of the client key.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of each SMTP exchange, in seconds.")
    imap_host: str | None = Field(
        None, description="IMAP host of the application mailbox, where DSN and MDN receipts arrive."
    )
    imap_port: int = Field(993, ge=1, le=65535, description="IMAP port (implicit TLS).")
    imap_user: str | None = Field(None, description="IMAP login of the application mailbox.")
    imap_password: SecretStr | None = Field(None, description="IMAP password of the application mailbox.")

    @model_validator(mode="after")
    def _checked(self) -> MssanteOperator:
        client_pair(self.client_cert, self.client_key)
        return self

    def imap_config(self, tls: TlsSettings | None = None) -> ImapConfig | None:
        """Where receipts are read; None when the site reads them elsewhere (no IMAP host saved). `tls`:
        the site settings' revocation checking (hard-fail when not given)."""
        if not (self.imap_host and self.imap_user and self.imap_password):
            return None
        return ImapConfig(
            host=self.imap_host,
            port=self.imap_port,
            user=self.imap_user,
            password=self.imap_password.get_secret_value(),
            ca_bundle=self.ca_bundle,
            crl_file=self.crl_file,
            timeout_s=self.timeout_s,
            tls=tls or TlsSettings(),
        )

    def config(self, tls: TlsSettings | None = None) -> OperatorConfig:
        """The SMTP submission settings; `tls`: the site settings' revocation checking (hard-fail when not
        given)."""
        return OperatorConfig(
            host=self.host,
            port=self.port,
            security=self.security,
            ca_bundle=self.ca_bundle,
            crl_file=self.crl_file,
            client_cert=self.client_cert,
            client_key=self.client_key,
            key_passphrase=self.key_passphrase.get_secret_value() if self.key_passphrase else None,
            timeout_s=self.timeout_s,
            tls=tls or TlsSettings(),
        )


async def load_mssante_operator(name: str = DEFAULT_NAME) -> MssanteOperator:
    """The saved operator (once per flow run); BlockNotSaved when none was saved."""
    return await load_saved(MssanteOperator, name)
