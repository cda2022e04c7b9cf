"""Sending one outbound PAM-FR identity message (A31 / A47) to the PFI: thin task around
`ris.identity.propagation` (INS rule 27).

AA: acknowledged. AE, no ACK in time, refused or cut connection: transient, retried with exponential
backoff and jitter, always with the same MSH-10 and bytes; after the last retry the message stays pending
for the next feed run. AR: failed with the ACK's codes, never resent automatically. Logs carry message and
patient ids only.
"""

from __future__ import annotations

from prefect import task

from blocks.pfi import load_pfi_endpoint
from blocks.site import load_site_settings
from ris.channels.hl7.client import Hl7Rejected, Hl7Transient
from ris.identity import propagation
from ris.operations import scheduled
from ris.store.db import unit_of_work
from tasks.run_context import SendRecorders, run_logger, sending_retries, settle_send, store_retries

RETRIES = 4


@task(name="pending-identity-messages", **store_retries())
async def pending_queues(destination: str = "pfi") -> list[list[int]]:
    """The outbox messages still to send, one list per patient in creation order (ids only); none while
    the site has not configured its PFI: they wait in the outbox, and one line says what is missing."""
    queues = await unit_of_work(propagation.pending, destination)
    if queues:
        try:  # what sending needs, read once for the run: each send finds them again at no cost
            await load_site_settings()
            await load_pfi_endpoint()
        except scheduled.NotConfigured as exc:
            waiting = sum(map(len, queues))
            run_logger(__name__).info("%s identity messages wait in the outbox: %s", waiting, exc)
            return []
    return queues


@task(
    name="send-identity-message",
    task_run_name="send-identity-message-{message_id}",
    **sending_retries(RETRIES),
)
async def send_outbound(message_id: int) -> str:
    """Send one outbox message to the PFI; returns its status: `acknowledged`, `failed`, or `pending`
    (transient faults beyond the last retry)."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    endpoint = await load_pfi_endpoint()
    attempt = await unit_of_work(propagation.prepare, message_id, settings)
    if attempt.er7 is None:
        log.info("outbound message %s is %s, nothing to send", message_id, attempt.status.value)
        return attempt.status.value
    er7 = attempt.er7
    return await settle_send(
        lambda: endpoint.client().send(er7, attempt.control_id),
        SendRecorders(
            refused=lambda reason: unit_of_work(propagation.record_rejected, message_id, reason),
            # Still pending after the last try: the next feed run sends it again.
            transient=lambda reason, _last: unit_of_work(propagation.record_transient, message_id, reason),
            sent=lambda _ack: unit_of_work(
                propagation.record_acknowledged, message_id, partner=settings.hl7.partner
            ),
        ),
        what=f"outbound message {message_id}",
        attempt=attempt.number,
        refused=Hl7Rejected,
        transient=Hl7Transient,
        refused_as="rejected by the PFI",
        sent_as="acknowledged by the PFI",
    )
