"""Deployments of the flows: `prefect.yaml` for a work pool, `serve` for the single-box mode.

Names live here, apart from the flow code, so the CLI can start runs without importing the flows."""

LIFECYCLE_FLOW = "report-lifecycle"
LIFECYCLE_DEPLOYMENT = f"{LIFECYCLE_FLOW}/single-box"
RETRY_FLOW = "delivery-retry"
RETRY_DEPLOYMENT = f"{RETRY_FLOW}/single-box"
IDENTITY_FEED_FLOW = "identity-feed"
IDENTITY_FEED_DEPLOYMENT = f"{IDENTITY_FEED_FLOW}/single-box"
