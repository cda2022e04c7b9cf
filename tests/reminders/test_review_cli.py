"""`ris report review` (RIS.CRR.05), run as a separate process the way a person or a scheduler does."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from sqlmodel import Session

from blocks.mail import MailSender
from cli.review import parse_duration
from ris.store.models import utcnow
from tests.cli_process import isolated_env, run_ris
from tests.reminders.conftest import announcement_pending, provisional_report

H = dt.timedelta(hours=1)


def test_review_lists_what_waits_longer_than_the_period(db_url: str, session: Session, tmp_path) -> None:
    now = utcnow()
    old = provisional_report(session, now - 50 * H)
    young = provisional_report(session, now - 3 * H)
    pending = announcement_pending(session, now - 72 * H)
    announcement_pending(session, now - 72 * H, recorded=True)
    env = isolated_env(tmp_path, RIS_DATABASE_URL=db_url)

    listed = run_ris(env, "report", "review", "--older-than", "48h", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [(i["kind"], i["id"]) for i in items] == [("announcement", pending.id), ("provisional", old.id)]
    assert items[1]["responsible_rpps"] == old.author_rpps and items[1]["accession_number"].startswith("RACC")
    assert set(items[1]) == {
        "kind",
        "id",
        "version",
        "accession_number",
        "since",
        "waiting_hours",
        "responsible_rpps",
        "responsible_name",
    }

    wider = run_ris(env, "report", "review", "--older-than", "2h")
    assert wider.returncode == 0 and young.id in wider.stdout and "provisional" in wider.stdout
    assert "PAT-TROIS" not in wider.stdout and "DOMINIQUE" not in wider.stdout  # never a patient's name

    bad = run_ris(env, "report", "review", "--older-than", "two days")
    assert bad.returncode == 1
    (line,) = bad.stderr.strip().splitlines()
    assert "--older-than 'two days'" in line and "e.g. 30m, 48h, 2d" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", dt.timedelta(minutes=30)), ("48h", 48 * H), ("2d", 48 * H), ("1.5h", 1.5 * H)],
)
def test_durations_read_like_people_write_them(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


class TestMailSender(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[MailSender]:
        return MailSender

    def test_has_a_valid_image(self, block) -> None:
        assert block._logo_url is None  # the engine's blocks carry no logo, on purpose


def test_the_block_refuses_a_plain_connection_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback host only"):
        MailSender(host="smtp.example.fr", security="none", from_address="ris@example.fr")
    config = MailSender(host="localhost", password="s3cret", from_address="ris@example.fr").config()
    assert config.password == "s3cret" and config.security == "starttls"
    assert "s3cret" not in repr(
        MailSender(host="localhost", password="s3cret", from_address="ris@example.fr")
    )
