"""The site's pool of RPPS-Rang ORG certificates as a Prefect Block (RIS.AUTH.01–02, RIS.MSS.24): one entry
per radiologist's activity, key passphrases as secrets. Optional: a site that is not an SCM saves none."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr

from blocks import DEFAULT_NAME, BlockNotSaved, load_saved
from ris.auth.certificates import RppsRangCertificate


class RppsRangEntry(BaseModel):
    rpps: str = Field(pattern=r"^\d{11}$", description="RPPS of the radiologist (11 digits)")
    rang: str | None = Field(None, pattern=r"^\d{1,4}$", description="Rank of the activity, if several")
    cert_path: Path = Field(description="PEM ORG certificate (IGC-Santé) of this RPPS-Rang")
    key_path: Path = Field(description="PEM private key of the certificate")
    passphrase: SecretStr | None = Field(None, description="Passphrase of the private key")
    mailbox: str | None = Field(
        None,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="The radiologist's personal MSSanté mailbox: From and envelope sender of their reports "
        "when the site sends from the radiologist's mailbox (RIS.MSS.24); empty: the directory's",
    )


class RppsRangCertificates(Block):
    _block_type_name = "RIS RPPS-Rang Certificates"
    _block_type_slug = "ris-rpps-rang-certificates"
    _description = (
        "SCM structures: the RPPS-Rang ORG certificate of each radiologist's activity, chosen from the "
        "validating radiologist for MSSanté sending, the DMP feed and INSi calls."
    )

    _documentation_url = "https://esante.gouv.fr/produits-services/igc-sante"
    _code_example = """
```python
from blocks.certificates import RppsRangCertificates
from ris.auth.certificates import select_certificate

pool = RppsRangCertificates.load("BLOCK_NAME").pool()
certificate = select_certificate(pool, validator_rpps)
```"""

    certificates: list[RppsRangEntry] = Field(
        default_factory=list, description="One entry per radiologist's activity (RPPS, rang, files)."
    )

    def pool(self) -> list[RppsRangCertificate]:
        return [
            RppsRangCertificate(
                rpps=e.rpps,
                rang=e.rang,
                cert_path=e.cert_path,
                key_path=e.key_path,
                passphrase=e.passphrase.get_secret_value() if e.passphrase else None,
                mailbox=e.mailbox,
            )
            for e in self.certificates
        ]


async def load_certificate_pool(name: str = DEFAULT_NAME) -> list[RppsRangCertificate] | None:
    """The saved pool (once per flow run), or None when the site has none (not an SCM)."""
    try:
        return (await load_saved(RppsRangCertificates, name)).pool()
    except BlockNotSaved:
        return None
