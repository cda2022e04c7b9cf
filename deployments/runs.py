"""Starting runs of the engine's deployments through the Prefect API (what the CLI and the worker do)."""

from __future__ import annotations

from prefect.deployments import run_deployment

from deployments import LIFECYCLE_DEPLOYMENT, RETRY_DEPLOYMENT


def lifecycle_key(report_id: str, version: int) -> str:
    """The idempotency key of a version's lifecycle run: at most one run per version, however started."""
    return f"report-{report_id}-v{version}"


async def start_lifecycle(report_id: str, version: int) -> str:
    """Start the lifecycle run of one version (or find the one already started); returns its id."""
    run = await run_deployment(
        LIFECYCLE_DEPLOYMENT,
        parameters={"report_id": report_id, "version": version},
        timeout=0,
        idempotency_key=lifecycle_key(report_id, version),
        as_subflow=False,
    )
    return str(run.id)


async def start_retry(report_id: str, version: int) -> str:
    """Start an administrator's retry run of one version's failed HL7 delivery; returns its id."""
    run = await run_deployment(
        RETRY_DEPLOYMENT, parameters={"report_id": report_id, "version": version}, timeout=0, as_subflow=False
    )
    return str(run.id)
