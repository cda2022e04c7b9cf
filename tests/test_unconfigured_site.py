"""A scheduled flow on a site that has not configured what it needs (a fresh install, a PFI-route site
without an MSSanté operator, no mail sender, no PFI, no Internet for the Annuaire Santé) completes with one
log line saying what is missing and how to configure it, and does no work; what is configured but broken
(a mailbox with a wrong password, a source that refuses connections) still fails, so that alerts fire."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest
from imapclient.exceptions import LoginError
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.exceptions import ObjectNotFound
from prefect.logging.handlers import APILogHandler
from prefect.states import State
from sqlmodel import Session, select

from blocks import DEFAULT_NAME, BlockNotSaved
from blocks.mail import MailSender
from blocks.mssante import MssanteOperator
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from ris.channels.mssante.receipts import ImapConfig
from ris.directory.extraction import ExtractionRefused
from ris.export.verify import verify_export
from ris.identity.registry import edit_identity
from ris.operations import scheduled
from ris.site.settings import MssanteSending, SiteSettings
from ris.store.models import Delivery, DirectoryPerson, OutboundMessage, OutboundStatus
from tests import factories
from tests.identity.helpers import CLERK
from tests.reminders.conftest import T0, provisional_report

SITE_BLOCKS = (SiteSettingsBlock, PfiEndpoint, MailSender, MssanteOperator)
CONFIGURE = "in the Prefect UI (Blocks) or with `ris configure site.toml`"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct_site(route_ps: str = "direct", route_patient: str = "direct") -> SiteSettings:
    return SiteSettings(mssante=MssanteSending(route_ps=route_ps, route_patient=route_patient))


# --- the decisions (ris.operations.scheduled), no Prefect ---------------------------------------------


@pytest.mark.parametrize(
    ("route_ps", "route_patient", "in_use"),
    [("pfi", "pfi", False), ("direct", "pfi", True), ("pfi", "direct", True), ("direct", "direct", True)],
)
def test_receipts_are_read_only_where_the_engine_sends_mssante_copies_itself(route_ps, route_patient, in_use):
    settings = direct_site(route_ps, route_patient)
    if in_use:
        scheduled.require_direct_mssante(settings)
    else:
        with pytest.raises(scheduled.NotConfigured, match=r"relayed by the PFI.*set a route to 'direct'"):
            scheduled.require_direct_mssante(settings)


def test_an_operator_without_a_mailbox_has_no_receipts_to_read():
    with pytest.raises(scheduled.NotConfigured, match=r"no IMAP mailbox .*\[mssante\]"):
        scheduled.receipts_mailbox(None)
    mailbox = ImapConfig(host="imap.example.org", port=993, user="bal", password="x")
    assert scheduled.receipts_mailbox(mailbox) is mailbox


def test_a_block_never_saved_is_not_configured_and_says_how_to_configure_it():
    message = str(BlockNotSaved(MailSender, DEFAULT_NAME))
    assert isinstance(BlockNotSaved(MailSender, DEFAULT_NAME), scheduled.NotConfigured)
    assert message.startswith("the RIS Mail Sender block 'default' is not saved") and CONFIGURE in message


def test_a_source_out_of_reach_is_not_configured_but_a_broken_one_is_refused(tmp_path):
    with pytest.raises(scheduled.NotConfigured, match=r"extractions\.invalid cannot be resolved"):
        scheduled.reachable_copy("https://extractions.invalid/PS_LibreAcces.zip", tmp_path)
    for broken in (f"http://127.0.0.1:{closed_port()}/PS_LibreAcces.zip", str(tmp_path / "absent.txt")):
        with pytest.raises(ExtractionRefused) as refused:
            scheduled.reachable_copy(broken, tmp_path)
        assert not isinstance(refused.value, scheduled.NotConfigured)


# --- the scheduled flows, under the Prefect test server ----------------------------------------------


async def _delete_site_blocks() -> list:
    """Delete the `default` documents of the site's blocks; returns the blocks that were saved."""
    deleted = []
    async with get_client() as client:
        for block_cls in SITE_BLOCKS:
            try:
                document = await client.read_block_document_by_name(
                    DEFAULT_NAME, block_cls.get_block_type_slug()
                )
            except ObjectNotFound:
                continue
            deleted.append(await block_cls.aload(DEFAULT_NAME))
            await client.delete_block_document(document.id)
    return deleted


@pytest.fixture
async def unconfigured(prefect_server, db_url) -> AsyncIterator[None]:
    """A site that saved none of its blocks (a fresh install). What other tests of the session saved is
    put back afterwards."""
    kept = await _delete_site_blocks()
    yield
    await _delete_site_blocks()
    for block in kept:
        await block.asave(DEFAULT_NAME, overwrite=True)


async def lines_saying(state: State, text: str) -> list[str]:
    """The log lines of the run that contain `text` (waiting for them to reach the API)."""
    await APILogHandler.aflush()
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    async with get_client() as client:
        for _ in range(50):
            lines = [log.message for log in await client.read_logs(log_filter=log_filter)]
            if any(text in line for line in lines):
                break
            await asyncio.sleep(0.2)
    return [line for line in lines if text in line]


async def completed(flow_state: State) -> object:
    assert flow_state.is_completed(), flow_state
    return await flow_state.aresult()


async def test_mss_receipts_on_a_site_that_saved_nothing(unconfigured):
    from flows.mss_receipts import mss_receipts

    state = await mss_receipts(return_state=True)
    assert await completed(state) == {"unseen": 0, "receipts": 0}
    [line] = await lines_saying(state, "mss receipts not collected")
    assert "the RIS Site Settings block 'default' is not saved" in line and CONFIGURE in line


@pytest.mark.parametrize(
    ("site", "operator", "said"),
    [
        (direct_site("pfi", "pfi"), None, "relayed by the PFI"),
        (direct_site(), None, "the RIS MSSante Operator block 'default' is not saved"),
        (direct_site(), MssanteOperator(host="smtp.example.org"), "has no IMAP mailbox"),
    ],
    ids=["pfi-route", "direct-without-operator", "operator-without-mailbox"],
)
async def test_mss_receipts_where_the_site_reads_none(unconfigured, site, operator, said):
    await SiteSettingsBlock(settings=site).asave(DEFAULT_NAME, overwrite=True)
    if operator is not None:
        await operator.asave(DEFAULT_NAME, overwrite=True)
    from flows.mss_receipts import mss_receipts

    state = await mss_receipts(return_state=True)
    assert await completed(state) == {"unseen": 0, "receipts": 0}
    [line] = await lines_saying(state, "mss receipts not collected")
    assert said in line


@pytest.mark.slow
async def test_mss_receipts_with_a_wrong_mailbox_password_still_fail(unconfigured, tmp_path, monkeypatch):
    import flows.mss_receipts
    from sandbox.mssante import MssSandbox
    from tasks.mssante import collect_mss_receipts
    from tests.mssante.conftest import save_operator

    site = direct_site()
    monkeypatch.setattr(
        flows.mss_receipts, "collect_mss_receipts", collect_mss_receipts.with_options(retries=0)
    )
    with MssSandbox(
        folder=tmp_path / "mss", tls_dir=tmp_path / "tls", imap_user=site.mssante.application_mailbox
    ) as operator:
        await SiteSettingsBlock(settings=site).asave(DEFAULT_NAME, overwrite=True)
        await save_operator(
            operator,
            imap_host="localhost",
            imap_port=operator.mailbox.port,
            imap_user=operator.imap_user,
            imap_password="not-the-password",
        )
        state = await flows.mss_receipts.mss_receipts(return_state=True)
    assert state.is_failed(), state
    with pytest.raises(LoginError):
        await state.aresult()


async def test_the_identity_feed_keeps_its_messages_while_no_pfi_is_saved(unconfigured, session: Session):
    from flows.identity_feed import identity_feed

    await SiteSettingsBlock(settings=SiteSettings()).asave(DEFAULT_NAME, overwrite=True)
    edit_identity(session, CLERK, factories.patient(session), {"used_name": "MARTIN"})  # an A31
    session.commit()

    state = await identity_feed(return_state=True)
    assert (await completed(state))["patients"] == 0
    [line] = await lines_saying(state, "identity messages wait in the outbox")
    assert line.startswith("1 identity messages wait") and "the RIS PFI Endpoint block 'default'" in line
    session.expire_all()
    [row] = session.exec(select(OutboundMessage)).all()
    assert (row.status, row.attempts) == (OutboundStatus.pending, 0)  # untouched, sent once configured


async def test_reminders_plan_nothing_without_a_mail_sender(unconfigured, session: Session):
    from flows.reminders import report_reminders

    await SiteSettingsBlock(settings=SiteSettings()).asave(DEFAULT_NAME, overwrite=True)
    provisional_report(session, T0 - dt.timedelta(hours=60))  # overdue

    state = await report_reminders(now=T0, return_state=True)
    assert (await completed(state))["planned"] == 0
    [line] = await lines_saying(state, "no reminder planned")
    assert "the RIS Mail Sender block 'default' is not saved" in line and CONFIGURE in line
    assert session.exec(select(Delivery)).all() == []


async def test_the_dashboard_waits_for_the_site_settings(unconfigured):
    from flows.dashboard import publish_dashboard_figures

    state = await publish_dashboard_figures(return_state=True)
    assert await completed(state) == {"rows": 0, "artifact": None}
    [line] = await lines_saying(state, "dashboard not published")
    assert "the RIS Site Settings block 'default' is not saved" in line


async def test_the_nightly_export_needs_no_configuration(unconfigured, session: Session, tmp_path):
    from flows.export import portability_export

    factories.validated_report(session)
    state = await portability_export(out=str(tmp_path / "nightly"), return_state=True)
    result = await completed(state)
    assert result["counts"]["reports"] == 1
    assert verify_export(tmp_path / "nightly").counts == result["counts"]


async def test_the_directory_import_out_of_reach_imports_nothing(unconfigured, session: Session):
    from flows.directory_import import directory_import

    state = await directory_import(
        persons="https://extractions.invalid/PS_LibreAcces.zip",
        mailboxes="https://extractions.invalid/Extraction_Correspondance_MSSante.zip",
        return_state=True,
    )
    assert await completed(state) == {"persons": None}  # the mailboxes were not tried
    [line] = await lines_saying(state, "not imported")
    assert "extractions.invalid cannot be resolved" in line and "pause its schedule" in line
    assert session.exec(select(DirectoryPerson)).all() == []


async def test_the_directory_import_from_a_source_that_refuses_still_fails(unconfigured):
    from flows.directory_import import directory_import

    state = await directory_import(persons=f"http://127.0.0.1:{closed_port()}/PS.zip", return_state=True)
    assert state.is_failed(), state
    with pytest.raises(ExtractionRefused, match="download failed"):
        await state.aresult()
