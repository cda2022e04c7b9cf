"""The site's calendar. The store keeps UTC instants; people read and type days in the site's time zone
(`SiteSettings.timezone`). Between 00:00 in Paris and 00:00 UTC the two calendars name different days,
so every conversion between an instant and a day goes through here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

Zone = str | ZoneInfo


def _zone(zone: Zone) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def aware(moment: dt.datetime) -> dt.datetime:
    """A stored instant with its zone: SQLite hands UTC back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def local(moment: dt.datetime, zone: Zone) -> dt.datetime:
    """The stored instant as the site's clock shows it."""
    return aware(moment).astimezone(_zone(zone))


def local_day(moment: dt.datetime, zone: Zone) -> dt.date:
    """The site's calendar day of an instant."""
    return local(moment, zone).date()


def day_start(day: dt.date, zone: Zone) -> dt.datetime:
    """The UTC instant at which `day` begins on the site's clock (what `--since DAY` means)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=_zone(zone)).astimezone(dt.UTC)


def today(zone: Zone, now: dt.datetime | None = None) -> dt.date:
    """The site's current day."""
    return local_day(now or dt.datetime.now(dt.UTC), zone)
