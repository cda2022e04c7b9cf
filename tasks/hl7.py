"""Publishing a validated version to the PFI over HL7 v2 / MLLP: thin task around `ris.channels.hl7`.

Only transient faults (AE, no ACK in time, connection refused) are retried, with exponential backoff and
jitter, always with the same MSH-10. AR and refusals before sending end the delivery as failed at once.
Logs carry report, version and delivery ids only.
"""

from __future__ import annotations

from prefect import task

from blocks.pfi import load_pfi_endpoint
from blocks.site import load_site_settings
from ris.channels.hl7 import publish
from ris.channels.hl7.client import Hl7Rejected, Hl7Transient
from ris.distribution import version_action
from ris.store.db import unit_of_work
from tasks.documents import rebuild_documents
from tasks.run_context import SendRecorders, run_logger, sending_retries, settle_send

RETRIES = 5


def own_action(version: int) -> str:
    """The action of a version's own message: initial, or replace from version 2 on."""
    return version_action(version)


@task(
    name="publish-hl7",
    task_run_name="publish-hl7-{report_id}-v{version}-{action}",
    **sending_retries(RETRIES),
)
async def publish_hl7(report_id: str, version: int, action: str = "initial") -> str:
    """Send the version's CDA to the PFI (ORU or MDM per site settings); returns the hl7 delivery status:
    `acknowledged` (AA), `failed` (AR, refusal, or transient faults beyond the last retry)."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    endpoint = await load_pfi_endpoint()
    attempt = await unit_of_work(publish.prepare, report_id, version, action, settings)
    if attempt.rebuild:
        log.warning(
            "report %s v%s: identity no longer qualified, documents rebuilt without the INS",
            report_id,
            version,
        )
        await rebuild_documents(report_id, version, "identity no longer qualified at send time (INS rule 28)")
        attempt = await unit_of_work(publish.prepare, report_id, version, action, settings)
    if attempt.er7 is None:
        log.info(
            "report %s v%s: hl7 delivery %s is %s, nothing to send",
            report_id,
            version,
            attempt.delivery_id,
            attempt.status.value,
        )
        return attempt.status.value
    er7 = attempt.er7
    return await settle_send(
        lambda: endpoint.client().send(er7, attempt.control_id),
        SendRecorders(
            refused=lambda reason: unit_of_work(publish.record_rejected, attempt, reason),
            transient=lambda reason, give_up: unit_of_work(
                publish.record_transient, attempt, reason, give_up=give_up
            ),
            sent=lambda _ack: unit_of_work(publish.record_accepted, attempt, partner=settings.hl7.partner),
        ),
        what=f"hl7 delivery {attempt.delivery_id}",
        attempt=attempt.number,
        refused=Hl7Rejected,
        transient=Hl7Transient,
        # The same MSH-10 again only when the PFI files a message once per MSH-10 (§9 of the volet).
        may_retry=settings.hl7.idempotent_on_control_id,
        refused_as="rejected by the PFI",
        sent_as="acknowledged by the PFI",
    )
