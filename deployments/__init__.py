"""The engine's deployments, defined once in `prefect.yaml`: `ris up` applies them to its work pool,
`prefect deploy` does for a site with workers, and the CLI starts runs by their names, derived here from the
flow names of `flows.names` (the one place they are defined) without importing the flows."""

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
    FLOW_NAMES,
    IDENTITY_FEED_FLOW,
    IDENTITY_VERIFICATION_FLOW,
    LIFECYCLE_FLOW,
    MSS_RECEIPTS_FLOW,
    MSS_SEND_FLOW,
    REMINDER_FLOW,
    RETRY_FLOW,
)

SPEC = Path(__file__).with_name("prefect.yaml")
WORK_POOL = "ris"


@cache
def specs() -> tuple[dict[str, Any], ...]:
    """The deployment entries of prefect.yaml."""
    return tuple(yaml.safe_load(SPEC.read_text(encoding="utf-8"))["deployments"])


# Which entrypoint holds each flow, as prefect.yaml declares it under the flow's name (tests check the names
# are those of flows.names and of the flows at the entrypoints): the one place the mapping is written.
ENTRYPOINTS: dict[str, str] = {spec["flow_name"]: spec["entrypoint"] for spec in specs()}


def spec_of(flow_name: str) -> dict[str, Any]:
    """The prefect.yaml entry of a flow's deployment."""
    return next(s for s in specs() if s["flow_name"] == flow_name)


def deployment_name(flow_name: str) -> str:
    """`<flow>/<deployment>` as `run_deployment` takes it."""
    return f"{flow_name}/{spec_of(flow_name)['name']}"


# `<flow>/<deployment>` of every flow of flows.names.
DEPLOYMENTS: dict[str, str] = {flow_name: deployment_name(flow_name) for flow_name in FLOW_NAMES}
LIFECYCLE_DEPLOYMENT = DEPLOYMENTS[LIFECYCLE_FLOW]
RETRY_DEPLOYMENT = DEPLOYMENTS[RETRY_FLOW]
IDENTITY_FEED_DEPLOYMENT = DEPLOYMENTS[IDENTITY_FEED_FLOW]
ANNOUNCEMENT_DEPLOYMENT = DEPLOYMENTS[ANNOUNCEMENT_FLOW]
DELETION_DEPLOYMENT = DEPLOYMENTS[DELETION_FLOW]
REMINDER_DEPLOYMENT = DEPLOYMENTS[REMINDER_FLOW]
DIRECTORY_IMPORT_DEPLOYMENT = DEPLOYMENTS[DIRECTORY_IMPORT_FLOW]
DASHBOARD_DEPLOYMENT = DEPLOYMENTS[DASHBOARD_FLOW]
EXPORT_DEPLOYMENT = DEPLOYMENTS[EXPORT_FLOW]
MSS_RECEIPTS_DEPLOYMENT = DEPLOYMENTS[MSS_RECEIPTS_FLOW]
IDENTITY_VERIFICATION_DEPLOYMENT = DEPLOYMENTS[IDENTITY_VERIFICATION_FLOW]
MSS_SEND_DEPLOYMENT = DEPLOYMENTS[MSS_SEND_FLOW]
