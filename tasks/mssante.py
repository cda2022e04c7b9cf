"""Direct MSSanté sending: one task run per recipient mail, around `ris.channels.mssante`; the delivery of
a manual send (RIS.MSS.20); the receipts read from the mailbox.

4xx replies and connection faults are retried with exponential backoff and jitter, always with the same
Message-ID (the mail is rendered again from the store with the delivery's key); a 5xx reply or an
untrusted server fails the delivery at once with the SMTP code and text. Logs carry delivery ids only.
"""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.states import State

from blocks import BlockNotSaved
from blocks.certificates import load_certificate_pool
from blocks.mssante import load_mssante_operator
from blocks.site import load_site_settings
from ris.auth.certificates import for_mssante, personal_mailboxes
from ris.channels.mail import MailRefused, MailTransient
from ris.channels.mssante import deliver, manual, receipts
from ris.channels.mssante.smtp import submit
from ris.operations import scheduled
from ris.operations.retry import UI_ACTOR
from ris.store.db import in_unit_of_work, unit_of_work
from ris.store.models import utcnow
from ris.tls import CertificateRevoked
from tasks.documents import rebuild_without_ins
from tasks.run_context import (
    SendRecorders,
    run_logger,
    send_or_fail,
    sending_retries,
    settle_send,
    store_retries,
)
from tasks.signing import choose_certificate

RETRIES = 4


@task(
    name="send-mss",
    task_run_name="send-mss-{delivery_id}",
    **sending_retries(RETRIES, MailTransient),
)
async def send_mss(delivery_id: int) -> str:
    """Send one direct MSSanté mail; returns its delivery status (`sent`, `failed`, `blocked`...). Any other
    error than a fault that may pass ends the copy `failed` with its reason; the report's other copies go
    on."""
    return await send_or_fail(_send_mss, delivery_id, f"mss delivery {delivery_id}", MailTransient)


async def _send_mss(delivery_id: int) -> str:
    log = run_logger(__name__)
    settings = await load_site_settings()
    operator = await load_mssante_operator()
    pool = await load_certificate_pool()
    mailboxes = personal_mailboxes(pool)  # RIS.MSS.24: the radiologists' own, when the site sends from them
    attempt = await unit_of_work(deliver.prepare, delivery_id, settings, now=utcnow(), mailboxes=mailboxes)
    if attempt.rebuild:
        await rebuild_without_ins(attempt.report_id, attempt.version, f"mss delivery {delivery_id}")
        attempt = await unit_of_work(
            deliver.prepare, delivery_id, settings, now=utcnow(), mailboxes=mailboxes
        )
    if attempt.message is None:
        log.info("mss delivery %s is %s, nothing to send", delivery_id, attempt.status.value)
        return attempt.status.value
    message = attempt.message
    config = operator.config(settings.tls)
    # RIS.MSS.24: an SCM sends with the validating radiologist's RPPS-Rang certificate
    choice = await choose_certificate(pool, delivery_id, f"mss delivery {delivery_id}")
    if choice.refused is not None:
        return choice.refused.value
    if choice.certificate is not None:
        config = for_mssante(config, choice.certificate)

    async def send() -> tuple[str, bool]:
        return await submit(
            message,
            config,
            sender=attempt.sender,
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


@task(name="open-manual-send", **store_retries())
async def open_manual_send(
    delivery_id: int | None, report_id: str | None, to: str | None, version: int | None
) -> manual.ManualSend:
    """RIS.MSS.20: the delivery of a manual send. `ris mss send` recorded it, with who asked, and passes its
    id; a run started from the Prefect UI gives the report and the address, and is recorded as the UI's
    (`ris.operations.retry.UI_ACTOR`, as a retry run without a request is), which may send only to an
    address the directory lists. ManualSendRefused (one line, nothing recorded) otherwise."""
    if delivery_id is not None:
        if to is not None:
            raise manual.ManualSendRefused("to: give delivery_id or an address, not both")
        return await unit_of_work(manual.to_send, delivery_id, report_id)
    if not report_id or not to:
        raise manual.ManualSendRefused("report_id and to: both are needed (or delivery_id)")
    return await unit_of_work(manual.request, report_id, to=to, version=version, actor=UI_ACTOR, proven=False)


def _apply_in_own_unit(data: bytes) -> bool:
    return in_unit_of_work(lambda session: bool(receipts.apply_mail(session, data)))


def _not_revoked(_task: object, _run: object, state: State) -> bool:
    """A server whose certificate is revoked stays refused until it changes it: no retry for that."""
    return not isinstance(state.data, CertificateRevoked)


@task(name="collect-mss-receipts", retries=2, retry_delay_seconds=10, retry_condition_fn=_not_revoked)
async def collect_mss_receipts() -> dict[str, int]:
    """Read the DSN and MDN receipts arrived in the application mailbox over IMAP, apply each (one unit
    of work per mail), then flag them read so that nothing is applied twice. Nothing is read where the
    site sends no MSSanté copy itself or has no mailbox for the receipts (one line says so). A site whose
    copies the PFI relays but that saved an operator block sends manual mails itself (RIS.MSS.20): their
    receipts are read."""
    log = run_logger(__name__)
    try:
        settings = await load_site_settings()
        try:
            operator = await load_mssante_operator()
        except BlockNotSaved:
            scheduled.require_direct_mssante(settings)  # on the PFI route, say that rather than the block
            raise
        mailbox = scheduled.receipts_mailbox(operator.imap_config(settings.tls))
    except scheduled.NotConfigured as exc:
        log.info("mss receipts not collected: %s", exc)
        return {"unseen": 0, "receipts": 0}
    counts = await asyncio.to_thread(receipts.collect, mailbox, _apply_in_own_unit)
    log.info("mss receipts: %s unseen mails, %s receipts applied", counts["unseen"], counts["receipts"])
    return counts
