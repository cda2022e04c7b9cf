"""Identity vigilance at a real site (issue 24), over real sockets: a PAM-FR A28 from another identification
domain reaches the listener (MLLP), is acknowledged, and its INS is verified by an `identity-verification`
run of the deployment prefect.yaml declares, served by an engine worker, against the INSi sandbox (HTTP):
OK ends *récupérée* with INSi's traits; a mismatch ends without the INS and with an open worklist item
that `ris identity worklist --json` lists and `ris identity resolve` closes; an INSi outage then its
recovery verifies once. The worklist's table artifact and its overdue alert (INS rules 30, 49-55)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName
from prefect.events import Event
from sqlmodel import Session, select
from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.insi import InsiEndpoint
from blocks.site import SiteSettingsBlock
from cli.main import app
from deployments import WORK_POOL, alerts
from deployments.apply import apply_deployments
from deployments.runs import start_identity_verification
from deployments.worker import RisWorker
from flows.identity_worklist import identity_worklist
from ris.hl7v2 import mllp
from ris.identity import verification, vigilance
from ris.identity.insi_client import InsiCall, InsiUnavailable
from ris.identity.intake import IntakePolicy, PamIntake
from ris.site.insi_verification import VerificationContract
from ris.store import db
from ris.store.models import (
    AuditEntry,
    IdentityStatus,
    IdentityStatusChange,
    InsiExchange,
    InsVerification,
    Patient,
    VerificationStatus,
    WorklistItem,
)
from sandbox.insi import InsiSandbox
from tasks.identity_worklist import ARTIFACT_KEY
from tests.identity.helpers import run_verifications
from tests.identity.test_pam import message, msa
from tests.operations.test_alerts import Receiver

runner = CliRunner()
REFERENT = "10001234567"  # the demo's identity-vigilance referent (acting_users)
PAT_TROIS_INS = "279035121518989"  # CNAM / ANS test identity, test OID .10


@dataclass
class Engine:
    insi: InsiSandbox
    pam_port: int


@pytest.fixture
async def engine(prefect_server, db_url, acting_users, wsdl: Path) -> AsyncIterator[Engine]:
    """What `ris up` runs, in the test's process: the site's blocks (its INSi endpoint the sandbox), the
    deployments of prefect.yaml served by an engine worker, and the PAM-FR listener that starts a
    verification run per foreign INS through the Prefect API."""
    async with InsiSandbox(port=0, wsdl=wsdl) as insi:
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await InsiEndpoint(url=insi.url, wsdl_path=wsdl, idam="SANDBOX-IDAM").asave(
            DEFAULT_NAME, overwrite=True
        )
        await apply_deployments(WORK_POOL)
        worker = RisWorker(WORK_POOL, limit=4, name="identity-vigilance-worker")
        serving = asyncio.create_task(worker.start(printer=lambda *_: None))
        try:
            await asyncio.wait_for(worker.ready.wait(), 120)
            intake = PamIntake(IntakePolicy(own_domain=frozenset({"GAM"})), start_identity_verification)
            async with intake.listener() as listener:
                yield Engine(insi, listener.port)
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            await InsiEndpoint.adelete(DEFAULT_NAME)  # the tests share one Prefect server


async def _send(port: int, er7: str) -> str:
    return msa(await mllp.exchange("127.0.0.1", port, er7, timeout=10))[1]


def _rows(db_url: str, model, *where) -> list:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(model).where(*where).order_by(model.id)).all())


async def _settled(db_url: str, timeout: float = 120) -> InsVerification:
    """The one verification, once its run applied INSi's answer."""
    for _ in range(int(timeout / 0.25)):
        rows = _rows(db_url, InsVerification)
        if rows and rows[0].status is not VerificationStatus.pending:
            assert len(rows) == 1
            return rows[0]
        await asyncio.sleep(0.25)
    pytest.fail(f"the verification was not settled within {timeout} s: {rows}")


async def _runs_of(row: InsVerification) -> list:
    """This verification's runs (the tests share a Prefect server: ids repeat across their databases, its
    run key does not)."""
    name = f"identity-verification-{row.id}"
    async with get_client() as client:
        for _ in range(120):
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            runs = [r for r in runs if r.idempotency_key == verification.run_key(row)]
            if runs and all(r.state and r.state.is_final() for r in runs):
                return runs
            await asyncio.sleep(0.5)
    pytest.fail(f"the run {name} did not end")


def _patient(db_url: str) -> Patient:
    [patient] = _rows(db_url, Patient)
    return patient


@pytest.mark.slow
async def test_a_foreign_cnam_test_ins_ends_recuperee_after_insi_answered_ok(engine, db_url):
    assert await _send(engine.pam_port, message(app="HOPY", rel="VALI")) == "AA"  # stored, acknowledged
    row = await _settled(db_url)
    assert row.status is VerificationStatus.verified
    p = _patient(db_url)
    assert (p.status, p.ins_matricule, p.ins_oid) == (
        IdentityStatus.RECUP,
        PAT_TROIS_INS,
        "1.2.250.1.213.1.4.10",
    )
    assert p.birth_given_names == "DOMINIQUE MARIE-LOUISE"  # the traits as INSi returned them (rule 6)
    [call] = engine.insi.received
    assert call["operation"] == "verifierIdentite" and call["idam"] == "SANDBOX-IDAM"
    [exchange] = _rows(db_url, InsiExchange)
    assert (exchange.operation, exchange.code_cr, exchange.by) == ("verify", "00", "engine")  # rules 48 / 53
    [run] = await _runs_of(row)
    assert run.state.is_completed() and run.name == f"identity-verification-{row.id}"  # ids only
    audited = {e.action for e in _rows(db_url, AuditEntry, AuditEntry.object_id == str(p.id))}
    assert {"identity.verification_requested", "insi.verify", "identity.verification"} <= audited


@pytest.mark.slow
async def test_traits_that_do_not_match_keep_no_ins_and_open_an_item_people_see(engine, db_url):
    ko = message(app="HOPY", rel="VALI").replace(
        "|19790328|", "|19790329|"
    )  # not the INS holder's birth date
    assert await _send(engine.pam_port, ko) == "AA"
    row = await _settled(db_url)
    assert row.status is VerificationStatus.refused
    p = _patient(db_url)
    assert (p.status, p.ins_matricule, p.ins_oid) == (IdentityStatus.PROV, None, None)  # rule 51
    listed = runner.invoke(app, ["identity", "worklist", "--open", "--json"])
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.stdout)
    assert (item["kind"], item["patient"], item["open"], item["verification"]) == (
        "insi-verification-ko",
        "000003",
        True,
        row.id,
    )
    assert item["message"] == "ADT^A28 1001 from HOPY^CHU-X" and item["age_hours"] >= 0
    assert item["reason"].startswith("INSi verification KO (01 Identite non verifiee)")

    retry = runner.invoke(
        app, ["identity", "resolve", str(item["id"]), "--action", "retry", "--reason", "x", "--by", REFERENT]
    )
    assert retry.exit_code == 1 and "not an INSi verification to ask again" in retry.stderr
    no_right = runner.invoke(
        app,
        ["identity", "resolve", str(item["id"]), "--action", "close", "--reason", "x", "--by", "10001234568"],
    )
    assert no_right.exit_code == 1 and "lacks the permission identity.worklist" in no_right.stderr
    closed = runner.invoke(
        app,
        [
            "identity",
            "resolve",
            str(item["id"]),
            "--action",
            "close",
            "--reason",
            "sender told",
            "--by",
            REFERENT,
        ],
    )
    assert closed.exit_code == 0 and f"item {item['id']} closed by {REFERENT}" in closed.stdout
    assert json.loads(runner.invoke(app, ["identity", "worklist", "--open", "--json"]).stdout) == []
    [resolved] = _rows(db_url, AuditEntry, AuditEntry.action == "identity.worklist_resolve")
    assert (resolved.actor, resolved.detail["reason"]) == (REFERENT, "sender told")


@pytest.mark.slow
async def test_an_insi_outage_then_its_recovery_verifies_once(engine, db_url):
    engine.insi.stop()  # INSi down: connections refused
    first = message(app="HOPY", rel="VALI")
    assert await _send(engine.pam_port, first) == "AA"  # the listener does not wait for INSi
    for _ in range(120):  # the first attempt fails and is traced; Prefect retries with back-off
        if _rows(db_url, InsiExchange):
            break
        await asyncio.sleep(0.25)
    engine.insi.start()  # INSi back, same address
    row = await _settled(db_url)
    assert row.status is VerificationStatus.verified and row.attempts >= 2
    exchanges = _rows(db_url, InsiExchange)
    assert [e.code_cr for e in exchanges if e.fault is None] == ["00"]  # asked and applied once
    assert all("unreachable or too slow" in e.fault for e in exchanges[:-1])  # each failed call traced
    p = _patient(db_url)
    assert (p.status, p.ins_matricule) == (IdentityStatus.RECUP, PAT_TROIS_INS)
    changes = _rows(db_url, IdentityStatusChange, IdentityStatusChange.patient_id == p.id)
    assert [c.new for c in changes] == [IdentityStatus.PROV, IdentityStatus.RECUP]
    # The sender resends the message, the listener starts again: still one verification, one run.
    assert await _send(engine.pam_port, first) == "AA"
    async with PamIntake(IntakePolicy(), start_identity_verification).listener():
        pass
    [run] = await _runs_of(row)
    assert run.state.is_completed()
    assert len(_rows(db_url, InsVerification)) == 1 and len(engine.insi.received) == 1


async def test_insi_out_after_every_retry_leaves_an_item_and_asking_again_verifies(
    db_url, insi_client, insi_sandbox
):
    """The last attempt's outage is a worklist item (rule 55); `resolve --action retry` asks INSi again."""
    assert msa(await PamIntake(IntakePolicy()).handle(message(app="HOPY")))[1] == "AA"
    [(verification_id, _key)] = _pending(db_url)
    with db.session_scope(db_url) as s:
        verification.begin(s, verification_id)
    down = InsiCall("verify", {}, error=InsiUnavailable("INSi unreachable or too slow: ConnectError"))
    with db.session_scope(db_url) as s:
        assert (
            verification.settle(s, verification_id, down, VerificationContract(), last=False)
            == verification.RETRY
        )
    with db.session_scope(db_url) as s:
        assert verification.settle(s, verification_id, down, VerificationContract(), last=True) == "failed"
    [item] = _rows(db_url, WorklistItem)
    assert item.kind == "insi-verification-unavailable" and "after 1 attempts" in item.reason
    with db.session_scope(db_url) as s:
        retry = vigilance.resolve(s, item.id, "retry", REFERENT, "INSi back")
    assert (retry.verification_id, retry.round) == (verification_id, 2)
    assert await run_verifications(insi_client, db_url) == ["verified"]
    assert _patient(db_url).status is IdentityStatus.RECUP


def _pending(db_url: str) -> list[tuple[int, int]]:
    with Session(db.get_engine(db_url)) as s:
        return verification.pending(s)


async def test_the_worklist_is_shown_with_ids_only_and_an_overdue_item_alerts_once(
    prefect_server, db_url, monkeypatch
):
    await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)  # identity_worklist_alert_hours: 24
    assert msa(await PamIntake(IntakePolicy()).handle(message(app="HOPY")))[1] == "AA"
    with db.session_scope(db_url) as s:
        patient = s.exec(select(Patient)).one()
        old = WorklistItem(
            kind="insi-verification-ko",
            object_type="patient",
            object_id=str(patient.id),
            reason="INSi verification KO",
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25),
        )
        s.add(old)
    assert await identity_worklist() == {"open": 1, "alerted": 1}
    assert await identity_worklist() == {"open": 1, "alerted": 0}  # once per item
    async with get_client() as client:
        [artifact] = await client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY]))
        )
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    shown = json.dumps(table, ensure_ascii=False)
    assert '"kind": "insi-verification-ko"' in shown
    assert not [secret for secret in ("PAT-TROIS", "000003", "1979", PAT_TROIS_INS) if secret in shown]

    receiver = Receiver()  # the site's alert webhook, on loopback
    monkeypatch.setenv(alerts.WEBHOOK_ENV, receiver.url)
    created = await alerts.ensure_alerts()
    try:
        async with get_client() as client:
            [overdue] = await client.read_automations_by_name(alerts.WORKLIST_OVERDUE)
        assert overdue.trigger.expect == {alerts.OVERDUE_EVENT}
        event = Event(
            event=alerts.OVERDUE_EVENT,
            resource={
                "prefect.resource.id": f"ris.worklist-item.{old.id}",
                "ris.worklist-kind": old.kind,
            },
            payload={"threshold_hours": 24},
        )
        render = ImmutableSandboxedEnvironment()
        [action] = overdue.actions
        block = await CustomWebhookNotificationBlock.aload(alerts.BLOCK_NAME)
        await block.anotify(
            render.from_string(action.body).render(event=event),
            render.from_string(action.subject).render(event=event),
        )
    finally:  # the tests share one Prefect server: leave it without alerts, as found
        receiver.server.shutdown()
        async with get_client() as client:
            for automation_id in created:
                await client.delete_automation(automation_id)
        await CustomWebhookNotificationBlock.adelete(alerts.BLOCK_NAME)
    [posted] = receiver.bodies
    assert posted["subject"] == f"RIS: identity worklist item ris.worklist-item.{old.id} waits"
    assert "(insi-verification-ko) has been open for more than 24 h" in posted["body"]
