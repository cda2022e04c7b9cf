"""Direct DMP feed: one task run per submission (feed, replacement, visibility update, deletion), around
`ris.channels.dmp`.

Transient faults (5xx, Receiver faults, a busy registry, connection faults, a lost answer) are retried
with exponential backoff and jitter, always with the same SubmissionSet uniqueId and entryUUID (the request
is rebuilt from the store with the delivery's key); a registry error fails the delivery at once with its
code. Logs carry delivery ids only.
"""

from __future__ import annotations

from prefect import task

from blocks.certificates import load_certificate_pool
from blocks.dmp import load_dmp_endpoint
from blocks.site import load_site_settings
from ris.auth.certificates import for_dmp
from ris.channels.dmp import deliver
from ris.channels.dmp.client import DmpRefused, DmpTransient, post
from ris.store import deliveries
from ris.store.db import unit_of_work
from ris.store.models import utcnow
from tasks.run_context import (
    SendRecorders,
    run_logger,
    send_or_fail,
    sending_retries,
    settle_send,
)
from tasks.signing import choose_certificate

RETRIES = 4


@task(name="send-dmp", task_run_name="send-dmp-{delivery_id}", **sending_retries(RETRIES, DmpTransient))
async def send_dmp(delivery_id: int) -> str:
    """Send one direct DMP submission; returns its delivery status (`acknowledged`, `failed`...). Any other
    error than a fault that may pass ends the copy `failed` with its reason; the report's other copies go
    on."""
    return await send_or_fail(_send_dmp, delivery_id, f"dmp delivery {delivery_id}", DmpTransient)


async def _send_dmp(delivery_id: int) -> str:
    log = run_logger(__name__)
    settings = await load_site_settings()
    endpoint = await load_dmp_endpoint()
    config, signing = endpoint.config(settings.tls), None
    # RIS.AUTH.01: an SCM feeds the DMP with the validating radiologist's RPPS-Rang certificate
    choice = await choose_certificate(
        await load_certificate_pool(), delivery_id, f"dmp delivery {delivery_id}"
    )
    if choice.refused is not None:
        return choice.refused.value
    if choice.certificate is not None:
        config, signing = for_dmp(config, choice.certificate)
    attempt = await unit_of_work(
        deliver.prepare, delivery_id, settings, config, signing or endpoint.signing(), now=utcnow()
    )
    if attempt.refused:
        status = await unit_of_work(deliveries.record_refused, delivery_id, attempt.refused)
        log.error("dmp delivery %s refused before sending: %s", delivery_id, attempt.refused)
        return status.value
    if attempt.request is None:
        log.info("dmp delivery %s is %s, nothing to send", delivery_id, attempt.status.value)
        return attempt.status.value
    request = attempt.request

    async def send() -> str:
        return await post(request, config)

    return await settle_send(
        send,
        SendRecorders.for_delivery(
            delivery_id, sent=lambda answer: unit_of_work(deliver.record_sent, delivery_id, answer)
        ),
        what=f"dmp delivery {delivery_id}",
        attempt=attempt.number,
        refused=DmpRefused,
        transient=DmpTransient,
    )
