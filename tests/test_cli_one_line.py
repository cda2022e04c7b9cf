"""Commands that met a careless operator's input with a traceback end in one line and a non-zero exit:
a non-UTF-8 site.toml, `ris export --out FILE/sub`, `ris document build --out EXISTING_FILE`, `ris mss
render` of a mail whose subject would hold a CR, a report text holding a control character. An export is
written 0600 in 0700 folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from cli.main import app
from ris.site.settings import SiteSettings
from ris.store.db import session_scope
from ris.store.models import Exam, Report
from tests import factories
from tests.hl7.conftest import with_documents

ADMIN = factories.RADIOLOGIST_RPPS  # the demo's administrator and radiologist (acting_users)
pytestmark = pytest.mark.usefixtures("acting_users")


def _one_line(result, starts: str) -> None:
    """A non-zero exit with one line on stderr, and no exception but the exit itself."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(starts), line


def _validated(session: Session) -> str:
    bundle = factories.validated_report(session)
    with_documents(session, bundle)
    return bundle.report.id


def test_a_site_toml_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes('[site]\nsender_label = "Centre d\'Imagerie M\xe9dicale"\n'.encode("latin-1"))
    result = CliRunner().invoke(app, ["configure", str(path), "--check"])
    _one_line(result, f"error: {path}: not UTF-8 text (invalid continuation byte at byte ")


def test_an_export_under_a_file_and_the_modes_of_an_export(
    db_url: str, session: Session, tmp_path: Path
) -> None:
    _validated(session)
    a_file = tmp_path / "FILE"
    a_file.write_text("not a folder")
    result = CliRunner().invoke(app, ["export", "--out", str(a_file / "sub"), "--by", ADMIN])
    _one_line(result, f"error: --out {a_file / 'sub'}: the folder cannot be created (Not a directory)")

    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", "--out", str(out), "--by", ADMIN])
    assert result.exit_code == 0, result.output
    folders = [out, *(p for p in out.rglob("*") if p.is_dir())]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(folders) > 2 and len(files) > 10
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    verified = CliRunner().invoke(app, ["import-export", str(out)])
    assert verified.exit_code == 0, verified.output


def test_document_build_into_an_existing_file(db_url: str, session: Session, tmp_path: Path) -> None:
    report_id = _validated(session)
    existing = tmp_path / "report.pdf"
    existing.write_text("a file, not a folder")
    result = CliRunner().invoke(app, ["document", "build", report_id, "--out", str(existing)])
    _one_line(result, f"error: --out {existing}: not a folder the documents can be written into")


def test_a_report_text_holding_a_control_character(db_url: str, session: Session, tmp_path: Path) -> None:
    report_id = _validated(session)
    text = tmp_path / "corrected.txt"
    text.write_text("Indication :\n\tdouleur.\x00\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["report", "replace", report_id, "--text-file", str(text), "--by", ADMIN]
    )
    _one_line(result, f"error: --text-file {text}: holds a control character (U+0000)")


def test_mss_render_of_a_subject_holding_a_cr(db_url: str, prefect_server, tmp_path: Path) -> None:
    SiteSettingsBlock(settings=SiteSettings()).save(DEFAULT_NAME, overwrite=True)
    with session_scope() as session:
        report_id = _validated(session)
        exam = session.get(Exam, session.get(Report, report_id).exam_id)
        exam.exam_label = "Scanner\rBcc: someone@outside.example"  # stored before intake refused it
        session.add(exam)
    out = tmp_path / "mail.eml"
    result = CliRunner().invoke(
        app, ["mss", "render", report_id, "--to", "a.b@hopital.mssante.fr", "--out", str(out)]
    )
    _one_line(result, f"error: report {report_id}: the mail cannot be built from what is stored (")
    assert not out.exists()
    forged = CliRunner().invoke(
        app, ["mss", "render", report_id, "--to", "a@b.fr\r\nBcc: x@y", "--out", str(out)]
    )
    _one_line(forged, "error: --to ")
