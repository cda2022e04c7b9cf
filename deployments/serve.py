"""The deployments of the single-box mode, served by `ris up` in the same process."""

from __future__ import annotations

from prefect.runner import Runner

from deployments import LIFECYCLE_DEPLOYMENT
from flows.report_lifecycle import report_lifecycle


async def single_box_runner() -> Runner:
    """A runner with every deployment registered (awaited, so runs can be started at once)."""
    runner = Runner(name="ris-single-box", query_seconds=1, pause_on_shutdown=False)
    await runner.aadd_deployment(
        await report_lifecycle.ato_deployment(
            name=LIFECYCLE_DEPLOYMENT.split("/")[1],
            description="One run per validated report version.",
            tags=["component:lifecycle"],
        )
    )
    return runner
