"""The engine's deployments, defined once in `prefect.yaml`: `ris up` applies them to its work pool,
`prefect deploy` does for a site with workers, and the CLI starts runs by the names read from it
(without importing the flows)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from flows.names import (
    ANNOUNCEMENT_FLOW,
    DASHBOARD_FLOW,
    DELETION_FLOW,
    DIRECTORY_IMPORT_FLOW,
    EXPORT_FLOW,
    IDENTITY_FEED_FLOW,
    LIFECYCLE_FLOW,
    MSS_RECEIPTS_FLOW,
    REMINDER_FLOW,
    RETRY_FLOW,
)

SPEC = Path(__file__).with_name("prefect.yaml")
WORK_POOL = "ris"
# Which entrypoint of prefect.yaml holds each flow (tests check that the names agree).
ENTRYPOINTS = {
    LIFECYCLE_FLOW: "flows/report_lifecycle.py:report_lifecycle",
    RETRY_FLOW: "flows/delivery_retry.py:retry_delivery",
    IDENTITY_FEED_FLOW: "flows/identity_feed.py:identity_feed",
    ANNOUNCEMENT_FLOW: "flows/announcement.py:announcement_release",
    DELETION_FLOW: "flows/report_deletion.py:report_deletion",
    REMINDER_FLOW: "flows/reminders.py:report_reminders",
    DIRECTORY_IMPORT_FLOW: "flows/directory_import.py:directory_import",
    DASHBOARD_FLOW: "flows/dashboard.py:publish_dashboard_figures",
    EXPORT_FLOW: "flows/export.py:portability_export",
    MSS_RECEIPTS_FLOW: "flows/mss_receipts.py:mss_receipts",
}


@cache
def specs() -> tuple[dict[str, Any], ...]:
    """The deployment entries of prefect.yaml."""
    return tuple(yaml.safe_load(SPEC.read_text(encoding="utf-8"))["deployments"])


def deployment_name(flow_name: str) -> str:
    """`<flow>/<deployment>` as `run_deployment` takes it."""
    entrypoint = ENTRYPOINTS[flow_name]
    spec = next(s for s in specs() if s["entrypoint"] == entrypoint)
    return f"{flow_name}/{spec['name']}"


LIFECYCLE_DEPLOYMENT = deployment_name(LIFECYCLE_FLOW)
RETRY_DEPLOYMENT = deployment_name(RETRY_FLOW)
IDENTITY_FEED_DEPLOYMENT = deployment_name(IDENTITY_FEED_FLOW)
ANNOUNCEMENT_DEPLOYMENT = deployment_name(ANNOUNCEMENT_FLOW)
DELETION_DEPLOYMENT = deployment_name(DELETION_FLOW)
REMINDER_DEPLOYMENT = deployment_name(REMINDER_FLOW)
DIRECTORY_IMPORT_DEPLOYMENT = deployment_name(DIRECTORY_IMPORT_FLOW)
DASHBOARD_DEPLOYMENT = deployment_name(DASHBOARD_FLOW)
EXPORT_DEPLOYMENT = deployment_name(EXPORT_FLOW)
