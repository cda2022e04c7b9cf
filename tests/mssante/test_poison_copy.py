"""One bad copy does not wedge a report: an exam label stored with a carriage return (as the worklist let
through before it refused control characters) cannot be put in a mail's Subject; on the direct route that
copy ends `failed` with the reason (seen by `ris delivery failed`, a retry and the alerts), never
`pending` for ever, and the DMP copy still goes. Over real sockets: the sandbox MSSanté operator and DMP."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from flows.report_lifecycle import report_lifecycle
from ris.site.settings import DmpSending, MssanteSending, SiteSettings
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus, Exam
from sandbox.dmp import DmpSandbox
from sandbox.mssante import MssSandbox
from tests import factories
from tests.dmp.conftest import save_dmp_endpoint
from tests.mssante.conftest import save_operator

pytestmark = pytest.mark.slow


@pytest.fixture
async def all_direct(prefect_server, db_url, tmp_path: Path):
    """A site sending every MSSanté copy and the DMP copy itself, no PFI: the sandbox operator and DMP."""
    from blocks import DEFAULT_NAME
    from blocks.site import SiteSettingsBlock

    settings = SiteSettings(
        mssante=MssanteSending(route_ps="direct", route_patient="direct"), dmp=DmpSending(route="direct")
    )
    settings.hl7.enabled = False
    with (
        MssSandbox(folder=tmp_path / "mss-received", tls_dir=tmp_path / "mss-tls") as operator,
        DmpSandbox(folder=tmp_path / "dmp-received", tls_dir=tmp_path / "dmp-tls") as dmp,
    ):
        await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
        await save_operator(operator)
        await save_dmp_endpoint(dmp)
        yield operator, dmp


async def test_a_copy_the_engine_cannot_build_fails_with_its_reason_and_the_dmp_copy_goes(all_direct) -> None:
    operator, dmp = all_direct
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0)
        exam = session.get(Exam, bundle.exam.id)
        exam.exam_label = "Scanner\rBcc: someone@outside.example"  # stored before intake refused it
        session.add(exam)
    state = await report_lifecycle(bundle.report.id, 1, return_state=True)
    assert state.is_completed(), state
    with session_scope() as session:
        rows = session.exec(select(Delivery).where(Delivery.report_id == bundle.report.id)).all()
        mss = [r for r in rows if r.channel in (Channel.mss_ps, Channel.mss_patient)]
        [dmp_copy] = [r for r in rows if r.channel is Channel.dmp]
    assert mss and {r.status for r in mss} == {DeliveryStatus.failed}
    assert all(r.reason.startswith("engine error, not sent (ValueError") for r in mss)
    assert operator.accepted() == []  # no mail left, none with a forged header
    assert dmp_copy.status is DeliveryStatus.acknowledged and len(list(dmp.folder.iterdir())) >= 1
    listed = CliRunner().invoke(app, ["delivery", "failed", "--report", bundle.report.id])
    assert listed.exit_code == 0 and f"{len(mss)} failed" in listed.stdout
