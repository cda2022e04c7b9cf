"""How much history an export holds, and whose."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ris import clock

RPPS_PATTERN = re.compile(r"^\d{11}$")
# RIS.PORT.01 « le professionnel de santé concerné »: what an export limited to one professional holds.
PROFESSIONAL_RULE = (
    "the reports this professional produced (author, or validator of a version) or received (requester, "
    "copy recipient), with their patients, documents, deliveries and the audit events about them"
)


@dataclass(frozen=True)
class Scope:
    """What an export holds: the history up to `as_of`, from the start of the day `since` on the site's
    clock (`zone`) when given, limited to one professional's reports when `rpps` is given."""

    as_of: dt.datetime
    since: dt.date | None = None
    zone: str = "UTC"
    rpps: str | None = None

    @property
    def since_at(self) -> dt.datetime | None:
        return clock.day_start(self.since, self.zone) if self.since else None
