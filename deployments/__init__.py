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
    REMINDER_FLOW,
    RETRY_FLOW,
)

SPEC = Path(__file__).with_name("prefect.yaml")
WORK_POOL = "ris"


@cache
def specs() -> tuple[dict[str, Any], ...]:
    """The deployment entries of prefect.yaml."""
    return tuple(yaml.safe_load(SPEC.read_text(encoding="utf-8"))["deployments"])


# Which entrypoint holds each flow, as prefect.yaml declares it (its `flow_name`; tests check it is the
# flow's own name): prefect.yaml is the one place the mapping is written.
ENTRYPOINTS: dict[str, str] = {spec["flow_name"]: spec["entrypoint"] for spec in specs()}


def spec_of(flow_name: str) -> dict[str, Any]:
    """The prefect.yaml entry of a flow's deployment."""
    return next(s for s in specs() if s["flow_name"] == flow_name)


def deployment_name(flow_name: str) -> str:
    """`<flow>/<deployment>` as `run_deployment` takes it."""
    return f"{flow_name}/{spec_of(flow_name)['name']}"


LIFECYCLE_DEPLOYMENT = deployment_name(LIFECYCLE_FLOW)
RETRY_DEPLOYMENT = deployment_name(RETRY_FLOW)
IDENTITY_FEED_DEPLOYMENT = deployment_name(IDENTITY_FEED_FLOW)
ANNOUNCEMENT_DEPLOYMENT = deployment_name(ANNOUNCEMENT_FLOW)
DELETION_DEPLOYMENT = deployment_name(DELETION_FLOW)
REMINDER_DEPLOYMENT = deployment_name(REMINDER_FLOW)
DIRECTORY_IMPORT_DEPLOYMENT = deployment_name(DIRECTORY_IMPORT_FLOW)
DASHBOARD_DEPLOYMENT = deployment_name(DASHBOARD_FLOW)
EXPORT_DEPLOYMENT = deployment_name(EXPORT_FLOW)
