"""How much history an export holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ris import clock


@dataclass(frozen=True)
class Scope:
    """What an export holds: the history up to `as_of`, from the start of the day `since` on the site's
    clock (`zone`) when given."""

    as_of: dt.datetime
    since: dt.date | None = None
    zone: str = "UTC"

    @property
    def since_at(self) -> dt.datetime | None:
        return clock.day_start(self.since, self.zone) if self.since else None
