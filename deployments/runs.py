"""Starting runs of the engine's deployments through the Prefect API (what the CLI and the worker do)."""

from __future__ import annotations

from typing import Any

from prefect.deployments import run_deployment

from deployments import (
    ANNOUNCEMENT_DEPLOYMENT,
    DELETION_DEPLOYMENT,
    IDENTITY_VERIFICATION_DEPLOYMENT,
    LIFECYCLE_DEPLOYMENT,
    MSS_RECEIPTS_DEPLOYMENT,
    MSS_SEND_DEPLOYMENT,
    RETRY_DEPLOYMENT,
)


def lifecycle_key(report_id: str, version: int) -> str:
    """The idempotency key of a version's lifecycle run: at most one run per version, however started."""
    return f"report-{report_id}-v{version}"


async def _start_once(deployment: str, report_id: str, version: int, key: str) -> str:
    """One run of a per-report deployment, whoever asks and however often (the key makes it once)."""
    run = await run_deployment(
        deployment,
        parameters={"report_id": report_id, "version": version},
        timeout=0,
        idempotency_key=key,
        as_subflow=False,
    )
    return str(run.id)


async def start_lifecycle(report_id: str, version: int) -> str:
    """Start the lifecycle run of one version (or find the one already started); returns its id."""
    return await _start_once(LIFECYCLE_DEPLOYMENT, report_id, version, lifecycle_key(report_id, version))


async def start_retry(parameters: dict[str, Any], tags: list[str] | None = None) -> str:
    """Start an administrator's retry run (the `delivery-retry` deployment, its parameters as the UI shows
    them: request_id, with the request's reason and delivery_ids | report_id | channel / since, and
    max_concurrency); returns its id. Retry runs queue one at a time (prefect.yaml): two batches never
    pick the same delivery."""
    run = await run_deployment(
        RETRY_DEPLOYMENT, parameters=parameters, timeout=0, as_subflow=False, tags=tags or []
    )
    return str(run.id)


async def start_announcement(report_id: str, version: int) -> str:
    """Start the run that releases what the announcement held back (at most one per version)."""
    return await _start_once(ANNOUNCEMENT_DEPLOYMENT, report_id, version, f"announce-{report_id}-v{version}")


async def start_deletion(report_id: str, version: int) -> str:
    """Start the deletion run of a report (at most one per report)."""
    return await _start_once(DELETION_DEPLOYMENT, report_id, version, f"delete-{report_id}")


async def start_identity_verification(verification_id: int, key: str) -> str:
    """Start the INSi verification run of one received INS; `key` (ris.identity.verification.run_key)
    makes it one run per identity, received message and round: a listener that starts it again, or a
    resend, finds the same run. Returns its id."""
    run = await run_deployment(
        IDENTITY_VERIFICATION_DEPLOYMENT,
        parameters={"verification_id": verification_id},
        timeout=0,
        idempotency_key=key,
        as_subflow=False,
    )
    return str(run.id)


async def start_mss_send(delivery_id: int, report_id: str, version: int) -> str:
    """Start the run of a manual MSSanté send `ris mss send` recorded (ids only: the delivery says where);
    its report and version name the run and hold the version's claim. Returns its id."""
    run = await run_deployment(
        MSS_SEND_DEPLOYMENT,
        parameters={"delivery_id": delivery_id, "report_id": report_id, "version": version},
        timeout=0,
        as_subflow=False,
    )
    return str(run.id)


async def start_mss_receipts() -> str:
    """Start a run that reads the MSSanté receipts (DSN, MDN) from the application mailbox now, as its
    schedule does every few minutes (one at a time, prefect.yaml); returns its id."""
    run = await run_deployment(MSS_RECEIPTS_DEPLOYMENT, timeout=0, as_subflow=False)
    return str(run.id)
