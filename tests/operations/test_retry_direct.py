"""Retries of what the engine sends itself: a batch of direct MSSanté copies refused by the sandbox
operator (mutual TLS) goes again with the same Message-IDs, at most N at once, and a batch interrupted
then started again sends only what is left (each mail accepted once, no duplicate); a refused reminder
goes again with its Message-ID, once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from blocks import DEFAULT_NAME
from blocks.mail import MailSender
from blocks.mssante import MssanteOperator
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from flows.delivery_retry import retry_delivery
from flows.reminders import report_reminders
from flows.report_lifecycle import report_lifecycle
from ris.channels.hl7.listener import ZamListener
from ris.operations import retry
from ris.site.settings import MssanteSending, SiteSettings
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel, DeliveryStatus, utcnow
from sandbox.mssante import CLIENT_PASSPHRASE, MssSandbox
from sandbox.pfi import PfiSandbox
from sandbox.smtp import SmtpSandbox
from tests import factories
from tests.reminders.conftest import provisional_report

pytestmark = pytest.mark.slow
ADMIN = "10001234567"


@pytest.fixture
async def operator(prefect_server, db_url, tmp_path: Path):
    """The site sends both MSSanté channels itself; the sandbox PFI takes the DMP copy."""
    settings = SiteSettings(mssante=MssanteSending(route_ps="direct", route_patient="direct"))
    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as peer,
    ):
        with MssSandbox(folder=tmp_path / "mss", tls_dir=tmp_path / "mss-tls") as server:
            await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
            await PfiEndpoint(
                host="127.0.0.1", port=peer.port, receipt_port=listener.port, ack_timeout_s=10
            ).asave(DEFAULT_NAME, overwrite=True)
            pki = server.mss_pki
            await MssanteOperator(
                host="localhost",
                port=server.port,
                ca_bundle=str(pki.ca),
                client_cert=str(pki.client_cert),
                client_key=str(pki.client_key),
                key_passphrase=CLIENT_PASSPHRASE.decode(),
                timeout_s=10,
            ).asave(DEFAULT_NAME, overwrite=True)
            yield server


def _direct(report_id: str, channel: Channel) -> dict[int, tuple[DeliveryStatus, str | None]]:
    with session_scope() as session:
        return {
            d.id: (d.status, d.external_id)
            for d in deliveries.for_report(session, report_id)
            if d.channel is channel and d.route == "direct"
        }


async def test_an_interrupted_batch_started_again_sends_only_what_is_left(operator):
    with session_scope() as session:
        rid = factories.validated_report(session, copies=3).report.id
    operator.data_reply = "550 5.1.1 Mailbox unavailable"
    await report_lifecycle(rid, 1)
    before = _direct(rid, Channel.mss_ps)
    assert len(before) == 4 and {s for s, _ in before.values()} == {DeliveryStatus.failed}
    operator.data_reply = None
    a, b, *rest = sorted(before)

    # A first batch sent `a`, then was interrupted right after it reopened `b`.
    assert await retry_delivery(
        **factories.retry_request(ADMIN, "operator incident over", delivery_ids=[a])
    ) == {str(a): "sent"}
    with session_scope() as session:
        [unit], _ = retry.select_units(session, delivery_ids=[b])
        retry.reopen(session, unit, actor=ADMIN, reason="operator incident over")

    # Started again for the whole channel: `b` (reopened, never sent) and the others, not `a`.
    outcome = await retry_delivery(
        **factories.retry_request(ADMIN, "operator incident over", channel=Channel.mss_ps),
        max_concurrency=2,
    )
    assert outcome == {str(i): "sent" for i in [b, *rest]}
    after = _direct(rid, Channel.mss_ps)
    assert {s for s, _ in after.values()} == {DeliveryStatus.sent}
    assert {i: k for i, (_, k) in after.items()} == {i: k for i, (_, k) in before.items()}  # same Message-ID
    accepted = [r.message_id for r in operator.received]
    assert len(accepted) == 4 and len(set(accepted)) == 4 and not any(r.duplicate for r in operator.received)
    assert {s for s, _ in _direct(rid, Channel.mss_patient).values()} == {DeliveryStatus.failed}  # not asked


@pytest.fixture
async def smtp(prefect_server, saved_site, tmp_path: Path):
    """The site's SMTP relay for reminders (sandbox, STARTTLS) and the mail sender block on it."""
    async with SmtpSandbox(folder=tmp_path / "mail", security="starttls") as server:
        await MailSender(
            host="localhost",
            port=server.port,
            security="starttls",
            ca_bundle=str(server.ca_pem),
            from_address="ris@imagerie-demo.mssante.fr",
            timeout_s=10,
        ).asave(DEFAULT_NAME, overwrite=True)
        yield server


async def test_a_refused_reminder_is_sent_again_with_its_message_id(smtp, session):
    provisional_report(session, utcnow() - dt.timedelta(hours=49))
    smtp.data_reply = "550 5.7.1 Mailbox unavailable"
    assert (await report_reminders())["failed"] == 1
    [row] = deliveries.failed(session, Channel.reminder)
    smtp.data_reply = None
    outcome = await retry_delivery(**factories.retry_request(ADMIN, "relay fixed", channel=Channel.reminder))
    assert outcome == {str(row.id): "sent"}
    [mail] = smtp.received
    assert mail.message_id == f"<{row.idempotency_key}>"
    assert (
        await retry_delivery(**factories.retry_request(ADMIN, "again", delivery_ids=[row.id])) == {}
    )  # sent: nothing again
    assert len(smtp.received) == 1
