"""INSi verification of an INS received from another identification domain (rules 30, 51, 52, 55): a thin
task around `ris.identity.verification`, called with the site's own certificate (automatic calls).

INSi unavailable (timeout, refused connection, HTTP error without SOAP): the call is traced and the task
retried with exponential backoff and jitter; after the last retry, a worklist item. A SOAP fault or an
unusable answer: traced, worklist item at once. Logs carry the verification id only.
"""

from __future__ import annotations

from prefect import task

from blocks.insi import load_insi_endpoint
from blocks.site import load_site_settings
from ris.identity import verification
from ris.identity.insi_client import InsiUnavailable
from ris.operations import scheduled
from ris.store.db import unit_of_work
from tasks.run_context import final_attempt, run_logger, sending_retries

RETRIES = 5  # 2, 4, 8, 16, 32 s with jitter: about a minute of INSi outage before a person is told


@task(
    name="verify-ins",
    task_run_name="verify-ins-{verification_id}",
    **sending_retries(RETRIES, InsiUnavailable),
)
async def verify_ins(verification_id: int) -> str:
    """Ask INSi whether the INS received belongs to the traits received, and apply the answer; returns the
    verification's status (verified, refused, failed, conflict)."""
    log = run_logger(__name__)
    job = await unit_of_work(verification.begin, verification_id)
    if job is None:
        status = await unit_of_work(verification.status_of, verification_id)
        log.info("INSi verification %s is %s: nothing to ask", verification_id, status)
        return status
    try:
        settings = await load_site_settings()
        endpoint = await load_insi_endpoint()
    except scheduled.NotConfigured as exc:
        return await unit_of_work(verification.give_up, verification_id, f"INSi cannot be asked: {exc}")
    if endpoint is None:
        reason = "INSi cannot be asked: no RIS INSi Endpoint block saved (Prefect UI or `ris configure`)"
        return await unit_of_work(verification.give_up, verification_id, reason)
    contract = settings.insi_verification
    async with endpoint.client(contract, settings.tls) as client:
        call = await client.verify(job.matricule, job.oid, job.query)
    status = await unit_of_work(verification.settle, verification_id, call, contract, last=final_attempt())
    if status == verification.RETRY:
        log.warning(
            "INSi verification %s attempt %s: INSi unavailable (will retry)", verification_id, job.attempt
        )
        raise call.error
    log.info("INSi verification %s: %s (attempt %s)", verification_id, status, job.attempt)
    return status
