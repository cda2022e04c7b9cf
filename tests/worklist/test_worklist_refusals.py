"""Worklist refusals (RIS.MSS.21, RIS.MSS.25): the patient record carries the patient-level refusals,
recorded by the actor "worklist" only where they change something; the report's refuse_mss_* fields are
per-report overrides (absent: follow the patient)."""

from __future__ import annotations

from sqlmodel import select

from ris.operations.demo import sample_worklist
from ris.store import refusals as stored_refusals
from ris.store.models import AuditEntry, Patient, PatientRefusal, Report
from ris.worklist import loader as worklist


def _patient(session, ipp: str) -> Patient:
    return session.exec(select(Patient).where(Patient.ipp == ipp)).one()


def test_patient_refusals_are_recorded_by_the_worklist_and_followed_by_its_reports(session):
    data = sample_worklist(1)
    data["patients"][0]["refusals"] = {"mss_patient": True, "mss_ps": False}
    result = worklist.load(session, data)
    session.commit()
    assert result.refused == []
    patient = _patient(session, data["patients"][0]["ipp"])
    rows = stored_refusals.history(session, patient.id)
    assert [(r.channel, r.refused, r.by) for r in rows] == [
        ("mss-patient", True, "worklist")
    ]  # no-op not kept
    report = session.get(Report, data["reports"][0]["id"])
    assert (report.refuse_mss_patient, report.refuse_mss_ps, report.refusal_override_by) == (None, None, None)
    found = stored_refusals.for_report(session, report, patient.id)
    assert (found.mss_patient, found.mss_ps, found.source) == (True, False, "patient")
    assert (
        session.exec(select(AuditEntry).where(AuditEntry.action == "patient.refusal")).one().actor
        == "worklist"
    )


def test_refusals_that_change_nothing_store_nothing(session):
    data = sample_worklist(1)
    data["patients"][0]["refusals"] = {"mss_patient": False, "mss_ps": False}
    assert worklist.load(session, data).ok
    assert session.exec(select(PatientRefusal)).all() == []


def test_the_report_fields_are_overrides_with_who_and_when(session):
    data = sample_worklist(2)
    data["patients"][0]["refusals"] = {"mss_patient": True, "mss_ps": True}
    data["reports"][0]["refuse_mss_patient"] = False
    data["reports"][1]["refuse_mss_ps"] = True
    assert worklist.load(session, data).ok
    allowed = session.get(Report, data["reports"][0]["id"])
    assert (allowed.refuse_mss_patient, allowed.refuse_mss_ps) == (False, None)
    assert allowed.refusal_override_by == "worklist" and allowed.refusal_override_at is not None
    found = stored_refusals.for_report(session, allowed, _patient(session, data["patients"][0]["ipp"]).id)
    assert (found.mss_patient, found.mss_ps) == (
        False,
        True,
    )  # override for one channel, patient for the other
    refusing = session.get(Report, data["reports"][1]["id"])
    found = stored_refusals.for_report(session, refusing, _patient(session, data["patients"][1]["ipp"]).id)
    assert (found.mss_patient, found.mss_ps, found.mss_ps_source) == (False, True, "report")


def test_the_demo_report_level_refusal_stays_a_refusal(session):
    data = sample_worklist(8)
    assert worklist.load(session, data).ok
    flagged = [item for item in data["reports"] if item.get("refuse_mss_patient")]
    assert flagged
    for item in flagged:
        report = session.get(Report, item["id"])
        assert report.refuse_mss_patient is True and report.refusal_override_by == "worklist"


def test_bad_refusals_are_refused_with_the_field_and_store_nothing(session):
    for refusal, expected in [
        ({"mss_patient": "maybe"}, "patients[0] refusals.mss_patient: Input should be a valid boolean"),
        ({"dmp": True}, "patients[0] refusals.dmp: Extra inputs are not permitted"),
        (["mss-patient"], "patients[0] refusals: Input should be a valid dictionary"),
    ]:
        data = sample_worklist(1)
        data["patients"][0]["refusals"] = refusal
        result = worklist.load(session, {"patients": data["patients"]})
        assert result.refused == [expected] or result.refused[0].startswith(expected), result.refused
        assert session.exec(select(Patient)).all() == []
        assert session.exec(select(PatientRefusal)).all() == []
