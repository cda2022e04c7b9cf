"""Instants at which the site's calendar (Europe/Paris) and UTC name different days: what a test that
prints or groups dates builds its reports at, so that it passes whatever the hour it runs."""

from __future__ import annotations

import datetime as dt

from ris.store.reports import ReportBundle

# 23:30 UTC on 4 December: 00:30 on 5 December in Paris (UTC+1).
PARIS_MIDNIGHT_WINTER = dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.UTC)
# 23:30 UTC on 14 July: 01:30 on 15 July in Paris (UTC+2).
PARIS_MIDNIGHT_SUMMER = dt.datetime(2026, 7, 14, 23, 30, tzinfo=dt.UTC)
# 22:30 UTC on 14 July: 00:30 on 15 July in Paris.
PARIS_HALF_PAST_MIDNIGHT_SUMMER = dt.datetime(2026, 7, 14, 22, 30, tzinfo=dt.UTC)


def at_instant(bundle: ReportBundle, validated_at: dt.datetime) -> ReportBundle:
    """The bundle as if its version had been validated at `validated_at` (in memory only)."""
    bundle.version.validated_at = validated_at
    return bundle
