"""The deployments of the single-box mode, served by `ris up` in the same process."""

from __future__ import annotations

from prefect.runner import Runner

from deployments import IDENTITY_FEED_DEPLOYMENT, LIFECYCLE_DEPLOYMENT, RETRY_DEPLOYMENT
from flows.delivery_retry import retry_delivery
from flows.identity_feed import identity_feed
from flows.report_lifecycle import report_lifecycle

IDENTITY_FEED_EVERY_S = 60


async def single_box_runner() -> Runner:
    """A runner with every deployment registered (awaited, so runs can be started at once)."""
    runner = Runner(name="ris-single-box", query_seconds=1, pause_on_shutdown=False)
    for flow, name, description, component in [
        (report_lifecycle, LIFECYCLE_DEPLOYMENT, "One run per validated report version.", "lifecycle"),
        (retry_delivery, RETRY_DEPLOYMENT, "An administrator's retry of a failed delivery.", "retry"),
    ]:
        deployment = await flow.ato_deployment(
            name=name.split("/")[1], description=description, tags=[f"component:{component}"]
        )
        await runner.aadd_deployment(deployment)
    # One run at a time: two overlapping runs could both pick the same pending message.
    feed = await identity_feed.ato_deployment(
        name=IDENTITY_FEED_DEPLOYMENT.split("/")[1],
        description="Send the pending PAM-FR identity updates (A31 / A47) to the PFI.",
        tags=["component:identity-feed"],
        interval=IDENTITY_FEED_EVERY_S,
        concurrency_limit=1,
    )
    await runner.aadd_deployment(feed)
    return runner
