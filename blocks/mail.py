"""The site's mail sender (SMTP relay or MSSanté operator) as a Prefect Block: where the engine's own mails
(reminders to the radiologists) are submitted, from the site's application mailbox."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from blocks import DEFAULT_NAME, load_saved
from ris.channels.mail import SmtpConfig, client_pair, is_loopback
from ris.tls import TlsSettings


class MailSender(Block):
    _block_type_name = "RIS Mail Sender"
    _block_type_slug = "ris-mail-sender"
    _description = (
        "SMTP submission server (site relay or MSSanté operator) and the application mailbox the engine "
        "sends its own mails from (provisional and announcement reminders)."
    )
    _documentation_url = "https://aiosmtplib.readthedocs.io/en/stable/"
    _code_example = """
```python
from blocks.mail import MailSender
from ris.channels import mail

mail_sender_block = MailSender.load("BLOCK_NAME")
await mail.send(message, mail_sender_block.config())
```"""

    host: str = Field(description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port: 587 (STARTTLS), 465 (TLS), 25.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="STARTTLS, implicit TLS, or none (a loopback host only). TLS 1.2 minimum."
    )
    ca_bundle: str | None = Field(
        None,
        description="PEM file of the CAs that sign the server certificate; empty: the system CAs. The "
        "certificate's revocation is checked (OCSP, CRL) as the site settings' `tls` says.",
    )
    client_cert: str | None = Field(None, description="PEM client certificate (MSSanté: the site's).")
    client_key: str | None = Field(None, description="PEM private key of the client certificate.")
    key_passphrase: SecretStr | None = Field(None, description="Passphrase of the client key.")
    username: str | None = Field(None, description="SMTP AUTH user, if the server asks for one.")
    password: SecretStr | None = Field(None, description="SMTP AUTH password.")
    from_address: str = Field(description="The site's application mailbox, sender of the engine's mails.")
    from_label: str = Field("RIS", description="Display name of the sender.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of each SMTP exchange, in seconds.")

    @model_validator(mode="after")
    def _checked(self) -> MailSender:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"security 'none' is allowed for a loopback host only, not {self.host!r}")
        client_pair(self.client_cert, self.client_key)
        if "@" not in self.from_address:
            raise ValueError(f"from_address {self.from_address!r}: must be a mail address")
        return self

    def config(self, tls: TlsSettings | None = None) -> SmtpConfig:
        """The submission settings; `tls`: the site settings' revocation checking (hard-fail when not
        given)."""
        return SmtpConfig(
            host=self.host,
            port=self.port,
            security=self.security,
            ca_bundle=self.ca_bundle,
            client_cert=self.client_cert,
            client_key=self.client_key,
            key_passphrase=self.key_passphrase.get_secret_value() if self.key_passphrase else None,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            from_address=self.from_address,
            from_label=self.from_label,
            timeout_s=self.timeout_s,
            tls=tls or TlsSettings(),
        )


async def load_mail_sender(name: str = DEFAULT_NAME) -> MailSender:
    """The saved sender (once per flow run); BlockNotSaved when none was saved."""
    return await load_saved(MailSender, name)
