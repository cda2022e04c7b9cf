"""Site settings as a Prefect Block, so operations teams can edit them in the UI."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from blocks import DEFAULT_NAME, load_saved
from ris.site.settings import SiteSettings


class SiteSettingsBlock(Block):
    _block_type_name = "RIS Site Settings"
    _block_type_slug = "ris-site-settings"
    _description = "Facility identity, RGPD footer, reminder delay, HL7 routing of the radiology site."
    _documentation_url = "https://docs.prefect.io/v3/concepts/blocks"  # edited in the UI, or `ris configure`
    _code_example = """
```python
from blocks.site import SiteSettingsBlock

site_settings_block = SiteSettingsBlock.load("BLOCK_NAME")
finess = site_settings_block.settings.facility.finess_geo
```"""

    settings: SiteSettings = Field(
        default_factory=SiteSettings,
        description="The site's settings (`ris configure site.toml` writes them).",
    )


async def load_site_settings(name: str = DEFAULT_NAME) -> SiteSettings:
    """The saved site settings (once per flow run); BlockNotSaved when an administrator never saved them."""
    return (await load_saved(SiteSettingsBlock, name)).settings
