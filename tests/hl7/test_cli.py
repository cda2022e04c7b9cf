"""`ris hl7 render`: the message a report would travel in, printed for people."""

from __future__ import annotations

import base64

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli.hl7 import app
from tests import factories
from tests.hl7.conftest import hl7_row, plan, with_documents

pytestmark = pytest.mark.slow


def test_render_prints_the_whole_message_with_its_cda(saved_site, session: Session) -> None:
    bundle = factories.validated_report(session, copies=0)
    with_documents(session, bundle)
    runner = CliRunner()
    preview = runner.invoke(app, ["render", bundle.report.id, "--type", "ORU", "--check"])
    assert preview.exit_code == 0, preview.output
    lines = preview.output.splitlines()
    assert lines[0].startswith("MSH|") and "ORU^R01^ORU_R01|PREVIEW|" in lines[0]
    document = next(line for line in lines if line.startswith("OBX|1|ED|"))
    assert base64.b64decode(document.split("|")[5].split("^")[4]).startswith(b"<?xml")

    rows = plan(session, bundle)  # once planned, MSH-10 is the hl7 delivery's idempotency key
    planned = runner.invoke(app, ["render", bundle.report.id, "--type", "MDM", "--action", "initial"])
    assert f"MDM^T02^MDM_T02|{hl7_row(rows).idempotency_key}|" in planned.output


def test_render_refuses_bad_input_in_plain_words(saved_site, session: Session) -> None:
    bundle = factories.validated_report(session, copies=0)
    runner = CliRunner()
    missing = runner.invoke(app, ["render", bundle.report.id])
    assert missing.exit_code == 1 and "no CDA built yet" in missing.output
    with_documents(session, bundle)
    assert (
        "a replacement needs a previous version"
        in runner.invoke(app, ["render", bundle.report.id, "--action", "replace"]).output
    )
    assert "--type 'XML'" in runner.invoke(app, ["render", bundle.report.id, "--type", "XML"]).output
    assert "does not exist" in runner.invoke(app, ["render", "NOPE"]).output
