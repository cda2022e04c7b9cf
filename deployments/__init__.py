"""Deployments of the flows: `prefect.yaml` for a work pool, `serve` for the single-box mode.

Names live here, apart from the flow code, so the CLI can start runs without importing the flows."""

from flows.names import IDENTITY_FEED_FLOW, LIFECYCLE_FLOW, RETRY_FLOW

LIFECYCLE_DEPLOYMENT = f"{LIFECYCLE_FLOW}/single-box"
RETRY_DEPLOYMENT = f"{RETRY_FLOW}/single-box"
IDENTITY_FEED_DEPLOYMENT = f"{IDENTITY_FEED_FLOW}/single-box"

__all__ = [
    "IDENTITY_FEED_DEPLOYMENT",
    "IDENTITY_FEED_FLOW",
    "LIFECYCLE_DEPLOYMENT",
    "LIFECYCLE_FLOW",
    "RETRY_DEPLOYMENT",
    "RETRY_FLOW",
]
