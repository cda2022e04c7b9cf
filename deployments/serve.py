"""The deployments of the single-box mode, served by `ris up` in the same process."""

from __future__ import annotations

from prefect.runner import Runner

from deployments import LIFECYCLE_DEPLOYMENT, RETRY_DEPLOYMENT
from flows.delivery_retry import retry_delivery
from flows.report_lifecycle import report_lifecycle


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
    return runner
