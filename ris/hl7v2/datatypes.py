"""HL7 v2 values written from Python ones: DTM date-times and Y / N indicators."""

from __future__ import annotations

import datetime as dt

from ris.clock import local


def dtm(when: dt.datetime, tz: str) -> str:
    """HL7 DTM in the site's local time, to the second (HL7 v2 dates carry no zone in the ANS examples)."""
    return local(when, tz).strftime("%Y%m%d%H%M%S")


def yes_no(flag: bool) -> str:
    return "Y" if flag else "N"
