"""`ris mss render ID --to ADDRESS --out FILE.eml`: the mail as it would leave, nothing sent."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from email.policy import default as default_policy

from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from cli.main import app
from ris.store.db import session_scope
from tests import factories
from tests.mssante.conftest import direct_settings, planned, with_documents

runner = CliRunner()


def test_render_writes_the_planned_mail_without_sending(db_url, prefect_server, tmp_path):
    settings = direct_settings()
    asyncio.run(SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True))
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0)
        with_documents(session, bundle, settings)
        row = next(
            r for r in planned(session, bundle, settings) if r.recipient == bundle.requester.mss_address
        )
        report_id, to, key = bundle.report.id, row.recipient, row.idempotency_key
    out = tmp_path / "mail.eml"
    result = runner.invoke(app, ["mss", "render", report_id, "--to", to, "--out", str(out)])
    assert result.exit_code == 0, result.output
    mail = message_from_bytes(out.read_bytes(), policy=default_policy)
    assert mail["To"] == to and mail["Message-ID"].startswith(f"<{key}@")  # the planned delivery's id
    assert next(p.get_filename() for p in mail.iter_attachments()) == "IHE_XDM.zip"
    patient = tmp_path / "patient.eml"
    result = runner.invoke(
        app, ["mss", "render", report_id, "--to", "279035121518989@patient.mssante.fr", "--out", str(patient)]
    )
    assert result.exit_code == 0, result.output
    assert message_from_bytes(patient.read_bytes(), policy=default_policy)["X-MSS-MES"] == "FIN"


def test_render_refuses_bad_input_in_one_line(db_url, prefect_server, tmp_path):
    asyncio.run(SiteSettingsBlock(settings=direct_settings()).asave(DEFAULT_NAME, overwrite=True))
    out = tmp_path / "x.eml"
    bad_to = runner.invoke(app, ["mss", "render", "CR1", "--to", "nobody", "--out", str(out)])
    assert bad_to.exit_code == 1 and "--to 'nobody': must be a mail address" in bad_to.stderr
    missing = runner.invoke(app, ["mss", "render", "NOPE", "--to", "a@b.fr", "--out", str(out)])
    assert missing.exit_code == 1 and "NOPE" in missing.stderr and "Traceback" not in missing.output
    assert not out.exists()
