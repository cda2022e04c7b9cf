"""A `delivery-retry` run created through the Prefect API (as the UI does) carries no authority it cannot
prove: it cannot send to an address of its choosing nor rewrite a correspondent's address, and the actor
recorded is the UI, never a typed RPPS. Against a real Prefect server, an engine worker, the sandbox PFI
and our ZAM listener: the copy a run sends goes where the store says."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import select

from blocks import DEFAULT_NAME
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from deployments import RETRY_DEPLOYMENT, WORK_POOL
from deployments.apply import apply_deployments
from deployments.worker import RisWorker
from flows.report_lifecycle import report_lifecycle
from ris.operations.retry import UI_ACTOR
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import AuditEntry, Channel, Correspondent, Delivery, DeliveryStatus
from sandbox.pfi import PfiSandbox
from sandbox.pfi.checks import check
from tests import factories
from tests.operations.test_retry import ADMIN, REACHED

pytestmark = pytest.mark.slow
OUTSIDE = "someone@outside.example"


@pytest.fixture
async def engine(prefect_server, db_url):
    """The sandbox PFI and our ZAM listener, the site's blocks, the deployments and one engine worker."""
    from ris.channels.hl7.listener import ZamListener

    async with (
        ZamListener(me=factories.SITE_PARTY) as listener,
        PfiSandbox(zam_port=listener.port, matrix_check=False) as pfi,
    ):
        await SiteSettingsBlock().asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1", port=pfi.port, receipt_port=listener.port, ack_timeout_s=10
        ).asave(DEFAULT_NAME, overwrite=True)
        await apply_deployments(WORK_POOL)
        worker = RisWorker(WORK_POOL, limit=2, name="retry-authority-worker")
        serving = asyncio.create_task(worker.start(printer=lambda *_: None))
        try:
            await asyncio.wait_for(worker.ready.wait(), 120)
            yield pfi
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


async def _bounced(pfi: PfiSandbox) -> tuple[int, str]:
    """A report whose copy to a professional bounced (Z02 550): that copy's id and its address."""
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=1)
        [(other, _)] = [(c, role) for c, role in bundle.recipients if role == "copy"]
    pfi.mss_errors = {other.mss_address: "550"}
    await report_lifecycle(bundle.report.id, 1)
    for _ in range(150):
        with session_scope() as session:
            copy = deliveries.find(session, bundle.report.id, 1, Channel.mss_ps, other.mss_address)
            if copy.status is DeliveryStatus.failed:
                pfi.mss_errors = {}
                return copy.id, other.mss_address
        await asyncio.sleep(0.1)
    pytest.fail("the bounce was not applied")


async def _run(parameters: dict):
    """A flow run of the deployment as the UI (or anyone holding the API) creates it, run to its end."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(RETRY_DEPLOYMENT)
        created = await client.request(  # the API's own call, as the UI makes it
            "POST",
            "/deployments/{id}/create_flow_run",
            path_params={"id": deployment.id},
            json={"parameters": parameters},
        )
        run = await client.read_flow_run(created.json()["id"])
        for _ in range(600):
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                return run
            await asyncio.sleep(0.2)
    pytest.fail(f"run {run.id} did not end: {run.state}")


def _relayed_to(pfi: PfiSandbox) -> list[list[str]]:
    """The recipients' addresses of every message the PFI filed."""
    filed = []
    for entry in pfi.received:
        if entry.answer == "AA" and not entry.duplicate:
            facts, _ = check(entry.raw, matrix_check=False)
            filed.append([r.address for r in facts.recipients])
    return filed


def _audit(action: str) -> list[AuditEntry]:
    with session_scope() as session:
        return session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()


async def test_a_run_from_the_api_cannot_choose_the_address_nor_the_actor(engine) -> None:
    pfi = engine
    copy, address = await _bounced(pfi)
    filed_before = len(_relayed_to(pfi))
    forged = {"reason": "x", "actor": "10000000001", "to": OUTSIDE, "delivery_ids": [copy]}

    # Parameters the deployment does not have: the run fails before it does anything.
    run = await _run(forged)
    assert run.state.is_failed() and "but was provided with parameters" in run.state.message
    assert len(_relayed_to(pfi)) == filed_before and _audit("delivery.retry") == []

    # From the UI: the copy goes again, to the address the store holds, asked by the UI.
    run = await _run({"reason": "mailbox fixed", "delivery_ids": [copy]})
    assert run.state.is_completed(), run.state
    with session_scope() as session:
        assert session.get(Delivery, copy).status.value in REACHED
    assert _relayed_to(pfi)[-1] == [address] and OUTSIDE not in str(_relayed_to(pfi))
    [retried] = _audit("delivery.retry")
    assert (retried.actor, retried.object_id, retried.detail["reason"]) == (
        UI_ACTOR,
        str(copy),
        "mailbox fixed",
    )
    with session_scope() as session:
        assert session.exec(select(Correspondent).where(Correspondent.mss_address == OUTSIDE)).all() == []
    assert _audit("correspondent.mss_address_changed") == []


async def test_a_request_is_carried_out_by_one_run_only(engine) -> None:
    pfi = engine
    copy, _ = await _bounced(pfi)
    new = "chloe.martin.new@hopital-demo.mssante.fr"
    parameters = factories.retry_request(ADMIN, "address changed", delivery_ids=[copy], to=new)
    run = await _run(parameters)
    assert run.state.is_completed(), run.state
    assert _relayed_to(pfi)[-1] == [new]
    filed = len(_relayed_to(pfi))
    # The same request again, from the API: refused, nothing sent, nothing audited again.
    again = await _run(parameters)
    assert again.state.is_failed() and f"already carried out by run {run.id}" in again.state.message
    assert len(_relayed_to(pfi)) == filed
    assert [(a.actor, a.detail["request"]) for a in _audit("delivery.retry")] == [
        (ADMIN, parameters["request_id"])
    ]
