"""The deployments of the single-box mode, served by `ris up` in the same process."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from deployments import LIFECYCLE_DEPLOYMENT
from flows.report_lifecycle import report_lifecycle


def single_box_deployments() -> list[RunnerDeployment]:
    return [
        report_lifecycle.to_deployment(
            name=LIFECYCLE_DEPLOYMENT.split("/")[1],
            description="One run per validated report version.",
            tags=["component:lifecycle"],
        )
    ]
