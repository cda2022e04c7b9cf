"""`ris identity refusal(s)` and `ris report refusal` (mssante.md §4, RIS.MSS.21, RIS.MSS.25): recorded with
who and when, shown with IPP and ids only, bad input refused with the field and the rule, nothing stored."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from ris.lifecycle import refusals
from ris.operations.demo import sample_worklist
from ris.store import refusals as stored_refusals
from ris.store.db import session_scope
from ris.store.models import AuditEntry, PatientRefusal, Report
from ris.worklist import loader as worklist

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("acting_users")  # the demo's radiologists act, as in a demo folder
REFUSED_BY = "this site refuses --by"  # an id neither logged in nor allowed: refused before anything


def _load() -> dict:
    data = sample_worklist(1)
    with session_scope() as session:
        assert worklist.load(session, data).ok
    return data


def _no_traits(data: dict, output: str) -> None:
    """Never a name or a birth date in the output of these commands (the IPP only)."""
    person = data["patients"][0]
    for trait in ("birth_name", "first_birth_given_name", "used_name", "birth_date"):
        assert person[trait] not in output
    assert person["ins"]["matricule"] not in output


def _stored() -> tuple[int, int]:
    with session_scope() as session:
        rows = session.exec(select(PatientRefusal)).all()
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.action.in_(["patient.refusal", "report.refusal_override"]))
        ).all()
        return len(rows), len(audited)


def test_a_patient_refusal_is_recorded_shown_and_withdrawn(db_url):
    data = _load()
    ipp, rpps = data["patients"][0]["ipp"], data["reports"][0]["author_rpps"]
    base = ["identity", "refusal", ipp, "--channel", "mss-patient", "--by", rpps]
    result = runner.invoke(app, [*base, "--refuse", "--reason", "patiente mineure"])
    assert result.exit_code == 0, result.output
    assert f"IPP {ipp}: mss-patient refused, recorded by {rpps}" in result.stdout
    again = runner.invoke(app, [*base, "--refuse"])
    assert again.exit_code == 0 and "already refused; nothing recorded" in again.stdout
    assert runner.invoke(app, [*base, "--withdraw"]).exit_code == 0

    shown = runner.invoke(app, ["identity", "refusals", ipp, "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert view["effective"] == {"mss-patient": False, "mss-ps": False}
    assert [(h["channel"], h["refused"], h["by"], h["reason"]) for h in view["history"]] == [
        ("mss-patient", True, rpps, "patiente mineure"),
        ("mss-patient", False, rpps, None),
    ]
    text = runner.invoke(app, ["identity", "refusals", ipp])
    assert text.exit_code == 0 and "mss-patient allowed" in text.stdout and "withdrawn" in text.stdout
    for output in (result.stdout, shown.stdout, text.stdout):
        _no_traits(data, output)
    assert _stored() == (2, 1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["NOPE", "--channel", "mss-ps", "--refuse", "--by", "{rpps}"],
            "IPP 'NOPE': no patient with this IPP",
        ),
        (
            ["{ipp}", "--channel", "dmp", "--refuse", "--by", "{rpps}"],
            "channel 'dmp': must be one of mss-patient",
        ),
        (["{ipp}", "--channel", "mss-ps", "--refuse", "--by", "123"], REFUSED_BY),
        (["{ipp}", "--channel", "mss-ps", "--refuse", "--by", "19999999999"], REFUSED_BY),
        (["{ipp}", "--channel", "mss-ps", "--by", "{rpps}"], "--refuse / --withdraw: give exactly one"),
        (["{ipp}", "--channel", "mss-ps", "--refuse", "--withdraw", "--by", "{rpps}"], "give exactly one"),
        (
            ["{ipp}", "--channel", "mss-ps", "--refuse", "--by", "{rpps}", "--reason", "x" * 201],
            "reason: at most 200",
        ),
    ],
)
def test_bad_input_for_a_patient_refusal_stores_nothing(db_url, args, expected):
    data = _load()
    ipp, rpps = data["patients"][0]["ipp"], data["reports"][0]["author_rpps"]
    result = runner.invoke(app, ["identity", "refusal", *(a.format(ipp=ipp, rpps=rpps) for a in args)])
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    _no_traits(data, result.output)
    assert _stored() == (0, 0)


def test_the_refusals_of_an_unknown_ipp(db_url):
    result = runner.invoke(app, ["identity", "refusals", "NOPE"])
    assert result.exit_code == 1 and "IPP 'NOPE': no patient with this IPP" in result.stderr


def test_a_report_override_allows_refuses_and_follows_the_patient(db_url):
    data = _load()
    ipp, report_id, rpps = (
        data["patients"][0]["ipp"],
        data["reports"][0]["id"],
        data["reports"][0]["author_rpps"],
    )
    assert (
        runner.invoke(
            app, ["identity", "refusal", ipp, "--channel", "mss-ps", "--refuse", "--by", rpps]
        ).exit_code
        == 0
    )
    base = ["report", "refusal", report_id, "--channel", "mss-ps", "--by", rpps]

    allowed = runner.invoke(app, [*base, "--withdraw"])
    assert allowed.exit_code == 0, allowed.output
    assert f"report {report_id}: mss-ps allowed for this report, recorded by {rpps}" in allowed.stdout
    assert "mss-ps allowed (report)" in allowed.stdout
    with session_scope() as session:
        report = session.get(Report, report_id)
        assert (report.refuse_mss_ps, report.refusal_override_by) == (False, rpps)

    shown = json.loads(runner.invoke(app, ["identity", "refusals", ipp, "--json"]).stdout)
    assert shown["overrides"][0]["report"] == report_id and shown["overrides"][0]["mss-ps"] == "allow"

    refused = runner.invoke(app, [*base[:4], "mss-patient", *base[5:], "--refuse"])
    assert refused.exit_code == 0 and "mss-patient refused (report)" in refused.stdout
    follow = runner.invoke(app, [*base, "--follow-patient"])
    assert follow.exit_code == 0 and "mss-ps refused (patient)" in follow.stdout
    with session_scope() as session:
        report = session.get(Report, report_id)
        assert (report.refuse_mss_patient, report.refuse_mss_ps) == (True, None)
        assert (
            stored_refusals.for_report(session, report, refusals.patient_of(session, report)).source
            == "report"
        )
    for output in (allowed.stdout, refused.stdout, follow.stdout):
        _no_traits(data, output)


def test_the_help_says_a_validated_report_is_only_changed_for_what_has_not_left(db_url):
    result = runner.invoke(app, ["report", "refusal", "--help"])
    assert result.exit_code == 0
    assert "only applies to what has not left yet" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["NOPE", "--channel", "mss-ps", "--refuse", "--by", "{rpps}"],
            "report id 'NOPE': no report with this id",
        ),
        (["{rid}", "--channel", "hl7", "--refuse", "--by", "{rpps}"], "channel 'hl7': must be one of"),
        (["{rid}", "--channel", "mss-ps", "--refuse", "--by", "1234567890A"], REFUSED_BY),
        (["{rid}", "--channel", "mss-ps", "--by", "{rpps}"], "--refuse / --withdraw / --follow-patient"),
        (
            ["{rid}", "--channel", "mss-ps", "--refuse", "--follow-patient", "--by", "{rpps}"],
            "give exactly one",
        ),
    ],
)
def test_bad_input_for_a_report_override_stores_nothing(db_url, args, expected):
    data = _load()
    rid, rpps = data["reports"][0]["id"], data["reports"][0]["author_rpps"]
    result = runner.invoke(app, ["report", "refusal", *(a.format(rid=rid, rpps=rpps) for a in args)])
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with session_scope() as session:
        report = session.get(Report, rid)
        assert (report.refuse_mss_patient, report.refuse_mss_ps, report.refusal_override_by) == (
            None,
            None,
            None,
        )
    assert _stored() == (0, 0)
