"""Plausibility of a birth date, wherever an identity comes in (worklist, PAM-FR feed): never in the
future, never before anyone alive could have been born."""

from __future__ import annotations

import datetime as dt

EARLIEST = dt.date(1880, 1, 1)


def implausibility(birth_date: dt.date, today: dt.date | None = None) -> str | None:
    """Why the date cannot be a living patient's birth date, or None when it can."""
    today = today or dt.date.today()
    if birth_date > today:
        return f"{birth_date.isoformat()} is in the future"
    if birth_date < EARLIEST:
        return f"{birth_date.isoformat()} is before {EARLIEST.year}"
    return None
