"""Manual MSSanté sending (RIS.MSS.20) over real sockets: `ris mss send` at a hospital whose PFI relays the
automatic copies records who asked and one delivery, starts the `mss-send` deployment with ids only, and
the run delivers one mail that the sandbox operator records and whose DSN is applied; asked again, nothing
goes twice. Bad requests are refused in one line with nothing recorded. A run started from the Prefect UI
is recorded as the UI's and sends only to an address the imported directory lists."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import Session, select
from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from cli.main import app
from deployments.apply import apply_deployments
from flows.mss_receipts import mss_receipts
from flows.mss_send import mss_send
from ris.channels.mssante.manual import MANUAL
from ris.directory.extraction import search_key
from ris.lifecycle import reports
from ris.operations.retry import UI_ACTOR
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus, DirectoryMailbox, DirectoryPerson
from sandbox.mssante import MssSandbox
from tests import factories
from tests.conftest import add_user
from tests.mssante.conftest import save_operator, with_documents

pytestmark = pytest.mark.usefixtures("acting_users")
RADIOLOGIST = factories.RADIOLOGIST_RPPS  # a demo user: radiologist (and administrator)
TO = "jacques.bideault@medecin.mssante.fr"
runner = CliRunner()


def _send(*args: str):
    """The command as a user types it (in a thread of its own: it runs its own event loop)."""
    return runner.invoke(app, ["mss", "send", *args])


def _report(settings: SiteSettings, **fields) -> str:
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0, **fields)
        with_documents(session, bundle, settings)
        return bundle.report.id


def list_in_directory(session: Session, address: str, rpps: str = "10003456789", kind: str = "PER") -> None:
    """What the Annuaire Santé import leaves for one professional and their mailbox."""
    session.add(
        DirectoryPerson(
            rpps=rpps,
            civility="DR",
            family="BIDEAULT",
            given="Jacques",
            family_key=search_key("BIDEAULT"),
            given_key=search_key("Jacques"),
            content_hash="0" * 32,
            import_run="test",
        )
    )
    session.add(DirectoryMailbox(address=address, kind=kind, rpps=rpps, import_run="test"))
    session.commit()


def _manual(report_id: str) -> list[Delivery]:
    with session_scope() as session:
        return [d for d in deliveries.for_report(session, report_id) if d.action == MANUAL]


def _audited(report_id: str) -> list[dict]:
    with session_scope() as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.action == "mss.manual_send")).all()
        return [{"actor": r.actor, **r.detail} for r in rows if r.detail.get("report_id") == report_id]


@pytest.fixture
async def hospital(prefect_server, db_url, tmp_path: Path):
    """A hospital whose PFI relays the automatic copies (both routes "pfi"), with the engine's MSSanté
    operator block for manual sends: the sandbox operator, receipts in its IMAP mailbox."""
    settings = SiteSettings()
    with MssSandbox(
        folder=tmp_path / "mss-received",
        tls_dir=tmp_path / "mss-tls",
        imap_user=settings.mssante.application_mailbox,
    ) as operator:
        await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
        await save_operator(
            operator,
            imap_host="localhost",
            imap_port=operator.mailbox.port,
            imap_user=operator.imap_user,
            imap_password=operator.imap_password,
        )
        yield settings, operator


async def _queued_run(run_id: UUID) -> dict:
    """The parameters the CLI gave the run; the run itself is removed (no worker serves this pool): the
    test runs the flow in-process with them."""
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        await client.delete_flow_run(run_id)
    return run.parameters


@pytest.mark.slow
async def test_ris_mss_send_delivers_one_mail_whose_dsn_is_applied(hospital):
    settings, operator = hospital
    await apply_deployments("mss-send-test")
    report_id = _report(settings)

    result = await asyncio.to_thread(_send, report_id, "--to", TO, "--by", RADIOLOGIST)
    assert result.exit_code == 0, result.output
    started = re.search(
        r"mss-send run ([0-9a-f-]{36}) started: delivery (\d+), report (\S+) v1 to (\S+)", result.stdout
    )
    assert started and started[3] == report_id and started[4] == TO
    parameters = await _queued_run(UUID(started[1]))
    delivery_id = int(started[2])
    assert parameters == {"delivery_id": delivery_id, "report_id": report_id, "version": 1}  # ids only
    [row] = _manual(report_id)
    assert (row.id, row.channel, row.recipient, row.route) == (delivery_id, Channel.mss_ps, TO, "direct")
    assert _audited(report_id) == [
        {
            "actor": RADIOLOGIST,
            "report_id": report_id,
            "version": 1,
            "to": TO,
            "directory": "not listed",
            "proven": True,
        }
    ]

    assert await mss_send(**parameters) == "sent"
    [mail] = operator.accepted()
    assert mail.rcpt_tos == (TO,) and mail.mail_from == settings.mssante.application_mailbox
    assert mail.message_id == f"<{row.idempotency_key}@imagerie-demo.mssante.fr>"
    assert f"ENVID={row.idempotency_key.upper()}" in operator.envelopes[0].mail_options

    assert (await mss_receipts())["receipts"] == 1
    [row] = _manual(report_id)
    assert row.status is DeliveryStatus.acknowledged  # the DSN applied

    again = await asyncio.to_thread(_send, report_id, "--to", TO, "--by", RADIOLOGIST)
    assert again.exit_code == 0, again.output
    assert f"delivery {delivery_id} is acknowledged already, nothing sent again" in again.stdout
    assert await mss_send(**parameters) == "acknowledged"
    assert len(operator.received) == 1


async def test_bad_requests_are_refused_in_one_line_and_record_nothing(hospital, db_url, monkeypatch):
    settings, _operator = hospital
    report_id = _report(settings)
    masked = _report(settings, mask_ps=True)
    with session_scope() as session:
        replaced = factories.validated_report(session, copies=0).report.id
        reports.replace(session, replaced, "Texte corrigé.", None, RADIOLOGIST)  # version 2, no documents
    add_user(db_url, "u.admin", "administrator")
    cases = [
        ((report_id, "--to", "nobody"), "--to 'nobody': not a mail address"),
        ((report_id, "--to", "a@b.fr\r\nBcc: x@y.fr"), "--to: holds a control character"),
        ((report_id, "--to", "279035121518989@patient.mssante.fr"), "a manual send goes to a professional"),
        (("NOPE", "--to", TO), "report 'NOPE' does not exist"),
        ((report_id, "--to", TO, "--version", "2"), "--version 2: report"),
        ((masked, "--to", TO), "not sent to professionals: document masked to professionals"),
        ((replaced, "--to", TO, "--version", "1"), "--version 1: replaced by version 2"),
        ((replaced, "--to", TO), "its documents are not built yet"),
    ]
    for args, message in cases:
        result = await asyncio.to_thread(_send, *args, "--by", RADIOLOGIST)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")  # --by u.admin accepted: their roles are not enough
    refused = await asyncio.to_thread(_send, report_id, "--to", TO, "--by", "u.admin")
    assert refused.exit_code == 1 and "u.admin lacks the permission report.send" in refused.stderr
    with session_scope() as session:
        list_in_directory(session, "someone.else@medecin.mssante.fr")  # a directory is imported now
    unlisted = await asyncio.to_thread(_send, report_id, "--to", TO, "--by", RADIOLOGIST)
    assert (
        unlisted.exit_code == 1 and "the imported directory lists no such MSSanté mailbox" in unlisted.stderr
    )
    assert [_manual(r) for r in (report_id, masked, replaced)] == [[], [], []]
    assert _audited(report_id) == []


async def test_a_run_from_the_ui_is_the_uis_and_sends_only_to_a_listed_address(hospital):
    settings, operator = hospital
    report_id = _report(settings)
    state = await mss_send(report_id=report_id, to=TO, return_state=True)
    assert state.is_failed()
    with pytest.raises(
        ValueError, match="a run started from the Prefect UI sends only to an MSSanté address"
    ):
        await state.result()
    assert _manual(report_id) == [] and operator.received == []

    with session_scope() as session:
        list_in_directory(session, TO)
    assert await mss_send(report_id=report_id, to=TO) == "sent"
    [row] = _manual(report_id)
    [audited] = _audited(report_id)
    assert audited["actor"] == UI_ACTOR and audited["proven"] is False
    assert audited["directory"] == "Jacques BIDEAULT (RPPS 10003456789, mailbox PER)"
    assert [m.rcpt_tos for m in operator.accepted()] == [(TO,)]
    with pytest.raises(ValueError, match=f"delivery {row.id}: a send of report {report_id}, not OTHER"):
        await mss_send(delivery_id=row.id, report_id="OTHER")
