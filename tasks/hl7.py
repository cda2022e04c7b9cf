"""Publishing a validated version to the PFI over HL7 v2 / MLLP: thin task around `ris.channels.hl7`.

Only transient faults (AE, no ACK in time, connection refused) are retried, with exponential backoff and
jitter, always with the same MSH-10. AR and refusals before sending end the delivery as failed at once.
Logs carry report, version and delivery ids only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from prefect import task

from blocks.pfi import PfiEndpoint, load_pfi_endpoint
from blocks.site import load_site_settings
from ris.channels.hl7 import publish
from ris.channels.hl7.client import Hl7Rejected, Hl7Transient
from ris.lifecycle.distribution import version_action
from ris.site.settings import SiteSettings
from ris.store.db import unit_of_work
from ris.store.models import DeliveryStatus
from tasks.documents import rebuild_without_ins
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
        await rebuild_without_ins(report_id, version, f"report {report_id} v{version}")
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
    return await send_to_pfi(
        endpoint,
        settings,
        attempt,
        what=f"hl7 delivery {attempt.delivery_id}",
        rejected=publish.record_rejected,
        transient=publish.record_transient,
        accepted=functools.partial(publish.record_accepted, partner=settings.hl7.partner),
    )


async def send_to_pfi(
    endpoint: PfiEndpoint,
    settings: SiteSettings,
    attempt: Any,
    *,
    what: str,
    rejected: Callable[..., DeliveryStatus],
    transient: Callable[..., DeliveryStatus],
    accepted: Callable[..., DeliveryStatus],
) -> str:
    """Send a prepared report message (`attempt.er7`, `attempt.control_id`) to the PFI and record the
    outcome with the store functions given, each `(session, attempt, ...)`: AR is final; AE, no ACK in
    time or a refused connection is retried with the same MSH-10, only when the PFI files a message once
    per MSH-10 (§9 of the volet)."""
    er7 = attempt.er7
    return await settle_send(
        lambda: endpoint.client().send(er7, attempt.control_id),
        SendRecorders(
            refused=lambda reason: unit_of_work(rejected, attempt, reason),
            transient=lambda reason, give_up: unit_of_work(transient, attempt, reason, give_up=give_up),
            sent=lambda _ack: unit_of_work(accepted, attempt),
        ),
        what=what,
        attempt=attempt.number,
        refused=Hl7Rejected,
        transient=Hl7Transient,
        may_retry=settings.hl7.idempotent_on_control_id,
        refused_as="rejected by the PFI",
        sent_as="acknowledged by the PFI",
    )
