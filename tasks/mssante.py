"""Direct MSSanté sending: one task run per recipient mail, around `ris.channels.mssante`.

4xx replies and connection faults are retried with exponential backoff and jitter, always with the same
Message-ID (the mail is rendered again from the store with the delivery's key); a 5xx reply or an
untrusted server fails the delivery at once with the SMTP code and text. Logs carry delivery ids only.
"""

from __future__ import annotations

import asyncio

from prefect import task

from blocks.certificates import load_certificate_pool
from blocks.mssante import load_mssante_operator
from blocks.site import load_site_settings
from ris import distribution
from ris.auth.certificates import CertificateUnavailable, for_mssante, select_certificate, version_validator
from ris.channels.mail import MailRefused, MailTransient
from ris.channels.mssante import deliver, receipts
from ris.channels.mssante.smtp import submit
from ris.store import deliveries
from ris.store.db import session_scope, unit_of_work
from ris.store.models import utcnow
from tasks.documents import rebuild_documents
from tasks.run_context import SendRecorders, run_logger, sending_retries, settle_send

RETRIES = 4


@task(name="plan-mss-direct", task_run_name="plan-mss-direct-{report_id}-v{version}")
async def direct_mss_to_send(report_id: str, version: int, actions: tuple[str, ...]) -> list[int]:
    """Ids of the version's direct MSSanté deliveries of `actions` still to send."""
    return await unit_of_work(distribution.direct_to_send, report_id, version, actions)


@task(name="plan-mss-deletion", task_run_name="plan-mss-deletion-{report_id}")
async def plan_mss_deletion(report_id: str, version: int) -> list[int]:
    """RIS.MSS.16 (the site's choice): the deletion notices of the direct MSSanté copies."""
    settings = await load_site_settings()
    if not settings.hl7.deletion_notice_mss:
        return []
    return await unit_of_work(distribution.plan_direct_deletion, report_id, version)


@task(
    name="send-mss",
    task_run_name="send-mss-{delivery_id}",
    **sending_retries(RETRIES, MailTransient),
)
async def send_mss(delivery_id: int) -> str:
    """Send one direct MSSanté mail; returns its delivery status (`sent`, `failed`, `blocked`...)."""
    log = run_logger(__name__)
    settings = await load_site_settings()
    operator = await load_mssante_operator()
    attempt = await unit_of_work(deliver.prepare, delivery_id, settings, now=utcnow())
    if attempt.rebuild:
        log.warning(
            "mss delivery %s: identity no longer qualified, documents rebuilt without the INS", delivery_id
        )
        await rebuild_documents(
            attempt.report_id, attempt.version, "identity no longer qualified at send time (INS rule 28)"
        )
        attempt = await unit_of_work(deliver.prepare, delivery_id, settings, now=utcnow())
    if attempt.message is None:
        log.info("mss delivery %s is %s, nothing to send", delivery_id, attempt.status.value)
        return attempt.status.value
    message = attempt.message
    config = operator.config()
    pool = await load_certificate_pool()
    if pool:  # RIS.MSS.24: an SCM sends with the validating radiologist's RPPS-Rang certificate
        try:
            validator = await unit_of_work(version_validator, attempt.report_id, attempt.version)
            config = for_mssante(config, select_certificate(pool, validator))
        except CertificateUnavailable as exc:
            log.warning("mss delivery %s: no usable RPPS-Rang certificate, nothing sent", delivery_id)
            return (await unit_of_work(deliveries.record_refused, delivery_id, f"certificate: {exc}")).value

    async def send() -> tuple[str, bool]:
        return await submit(
            message,
            config,
            sender=settings.mssante.application_mailbox,
            recipient=attempt.recipient,
            envid=attempt.envid,
        )

    return await settle_send(
        send,
        SendRecorders.for_delivery(
            delivery_id,
            sent=lambda answer: unit_of_work(deliver.record_sent, delivery_id, answer[0], dsn=answer[1]),
        ),
        what=f"mss delivery {delivery_id}",
        attempt=attempt.number,
        refused=MailRefused,
        transient=MailTransient,
    )


def _apply_in_own_unit(data: bytes) -> bool:
    with session_scope() as session:
        return bool(receipts.apply_mail(session, data))


@task(name="collect-mss-receipts", retries=2, retry_delay_seconds=10)
async def collect_mss_receipts() -> dict[str, int]:
    """Read the DSN and MDN receipts arrived in the application mailbox over IMAP, apply each (one unit
    of work per mail), then flag them read so that nothing is applied twice."""
    log = run_logger(__name__)
    config = (await load_mssante_operator()).imap_config()
    if config is None:
        log.info("no IMAP mailbox configured on the MSSanté operator block: receipts not collected")
        return {"unseen": 0, "receipts": 0}
    counts = await asyncio.to_thread(receipts.collect, config, _apply_in_own_unit)
    log.info("mss receipts: %s unseen mails, %s receipts applied", counts["unseen"], counts["receipts"])
    return counts
