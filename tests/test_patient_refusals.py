"""Patient refusals (mssante.md §4, RIS.MSS.21, RIS.MSS.25): the effective value is the report's override
when it has one, else the patient's latest choice; the patient-level history is append-only, attributed
and audited; bad input names the field and the rule and stores nothing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from ris.lifecycle import refusals, routing
from ris.store import audit
from ris.store import refusals as stored_refusals
from ris.store.models import AuditEntry, Channel, PatientRefusal, ReportStatus
from ris.store.reports import load_bundle
from tests import factories

RPPS = factories.RADIOLOGIST_RPPS
PATIENT_REASON = "patient refused sending to Mon espace santé"


def _report(patient: bool | None = None, ps: bool | None = None) -> SimpleNamespace:
    return SimpleNamespace(refuse_mss_patient=patient, refuse_mss_ps=ps)


def _rows(*pairs: tuple[str, bool]) -> list[SimpleNamespace]:
    return [SimpleNamespace(channel=channel, refused=refused) for channel, refused in pairs]


# --- the pure rule ---------------------------------------------------------------------------------------


def test_nothing_recorded_means_no_refusal():
    assert stored_refusals.effective(_report(), []) == stored_refusals.Refusals(False, False, "none", "none")
    assert stored_refusals.effective(None, []).source == "none"


def test_the_latest_patient_row_decides_and_a_withdrawal_ends_a_refusal():
    rows = _rows(("mss-patient", True), ("mss-ps", True), ("mss-patient", False))
    found = stored_refusals.effective(_report(), rows)
    assert (found.mss_patient, found.mss_ps) == (False, True)
    assert (found.mss_patient_source, found.mss_ps_source, found.source) == ("patient", "patient", "patient")


def test_a_report_override_wins_over_the_patient_either_way():
    rows = _rows(("mss-patient", True), ("mss-ps", False))
    found = stored_refusals.effective(_report(patient=False, ps=True), rows)
    assert (found.mss_patient, found.mss_ps, found.source) == (False, True, "report")
    mixed = stored_refusals.effective(_report(ps=False), rows)
    assert (mixed.mss_patient, mixed.mss_patient_source, mixed.mss_ps_source) == (True, "patient", "report")
    assert mixed.source == "report"


overrides = st.one_of(st.none(), st.booleans())
histories = st.lists(st.tuples(st.sampled_from(refusals.CHANNELS), st.booleans()), max_size=12)


@given(history=histories, patient_override=overrides, ps_override=overrides)
def test_effective_is_the_override_else_the_latest_patient_row(history, patient_override, ps_override):
    found = stored_refusals.effective(_report(patient_override, ps_override), _rows(*history))
    for channel, override, value, source in [
        ("mss-patient", patient_override, found.mss_patient, found.mss_patient_source),
        ("mss-ps", ps_override, found.mss_ps, found.mss_ps_source),
    ]:
        latest = [refused for ch, refused in history if ch == channel][-1:]
        if override is not None:
            assert (value, source) == (override, "report")
        elif latest:
            assert (value, source) == (latest[0], "patient")
        else:
            assert (value, source) == (False, "none")
        assert found.refused(channel) is value


# --- recorded at patient level ---------------------------------------------------------------------------


def test_refusals_are_appended_attributed_and_audited(session):
    bundle = factories.validated_report(session)
    patient = bundle.patient
    first = refusals.record(session, patient, "mss-patient", True, RPPS, "patiente mineure")
    assert refusals.record(session, patient, "mss-patient", True, RPPS) is None  # no change, no row
    refusals.record(session, patient, "mss-ps", True, "worklist")
    refusals.record(session, patient, "mss-patient", False, RPPS, "majeure")
    session.commit()
    rows = stored_refusals.history(session, patient.id)
    assert [(r.channel, r.refused, r.by) for r in rows] == [
        ("mss-patient", True, RPPS),
        ("mss-ps", True, "worklist"),
        ("mss-patient", False, RPPS),
    ]
    assert first.at is not None and first.reason == "patiente mineure"
    actions = session.exec(
        select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.object_id == str(patient.id))
    ).all()
    assert [tuple(a) for a in actions] == [
        ("patient.refusal", RPPS),
        ("patient.refusal", "worklist"),
        ("patient.refusal_withdrawn", RPPS),
    ]
    found = load_bundle(session, bundle.report.id).refusals
    assert (found.mss_patient, found.mss_ps, found.source) == (False, True, "patient")


def test_the_refusal_history_is_append_only(session):
    bundle = factories.validated_report(session)
    row = refusals.record(session, bundle.patient, "mss-patient", True, RPPS)
    session.commit()
    row.refused = False
    with pytest.raises(audit.AuditTrailIsAppendOnly):
        session.commit()
    session.rollback()
    session.delete(session.get(PatientRefusal, row.id))
    with pytest.raises(audit.AuditTrailIsAppendOnly):
        session.commit()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s, p: refusals.record(s, p, "dmp", True, RPPS),
            r"channel 'dmp': must be one of mss-patient, mss-ps",
        ),
        (
            lambda s, p: refusals.record(s, p, "mss-ps", True, RPPS, "x" * 201),
            r"reason: at most 200 characters",
        ),
        (lambda s, p: refusals.check_user(s, "123"), r"by: must be the 11 digits"),
        (
            lambda s, p: refusals.check_user(s, "19999999999"),
            r"by: RPPS 19999999999 is not a known correspondent",
        ),
        (lambda s, p: refusals.patient_by_ipp(s, "NOPE"), r"IPP 'NOPE': no patient with this IPP"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(session, call, message):
    bundle = factories.validated_report(session)
    with pytest.raises(refusals.RefusalRuleError, match=message) as caught:
        call(session, bundle.patient)
    assert "PAT-TROIS" not in str(caught.value) and "DOMINIQUE" not in str(caught.value)
    assert stored_refusals.history(session, bundle.patient.id) == []


# --- the per-report override -----------------------------------------------------------------------------


def test_an_override_is_set_cleared_and_audited(session):
    bundle = factories.validated_report(session)
    refusals.record(session, bundle.patient, "mss-patient", True, RPPS)
    report = bundle.report
    assert refusals.override(session, report, "mss-patient", False, RPPS) is True
    assert refusals.override(session, report, "mss-patient", False, RPPS) is False  # already so
    session.commit()
    assert (report.refuse_mss_patient, report.refusal_override_by) == (False, RPPS)
    assert report.refusal_override_at is not None
    assert load_bundle(session, report.id).refusals.mss_patient is False
    refusals.override(session, report, "mss-patient", None, RPPS)
    session.commit()
    assert load_bundle(session, report.id).refusals.mss_patient is True  # follows the patient again
    details = session.exec(
        select(AuditEntry.detail).where(AuditEntry.action == "report.refusal_override")
    ).all()
    assert [(d["override"], d["previous"]) for d in details] == [
        ("allow", "follow-patient"),
        ("follow-patient", "allow"),
    ]


def test_a_deleted_report_takes_no_override(session):
    bundle = factories.validated_report(session)
    bundle.report.status = ReportStatus.deleted
    with pytest.raises(refusals.RefusalRuleError, match="deleted"):
        refusals.override(session, bundle.report, "mss-ps", True, RPPS)
    assert bundle.report.refuse_mss_ps is None


def test_the_release_of_a_held_back_copy_reads_the_effective_refusal(session):
    """routing.withheld_because (evaluated again when the announcement releases the copy, and when each copy
    leaves) sees a refusal the patient recorded after validation, and a report override that allows
    the mail."""
    bundle = factories.validated_report(session, announcement_required=True)
    assert routing.withheld_because(bundle, Channel.mss_patient) is None
    refusals.record(session, bundle.patient, "mss-patient", True, RPPS)
    session.commit()
    assert (
        routing.withheld_because(load_bundle(session, bundle.report.id), Channel.mss_patient)
        == PATIENT_REASON
    )
    refusals.override(session, bundle.report, "mss-patient", False, RPPS)
    session.commit()
    assert routing.withheld_because(load_bundle(session, bundle.report.id), Channel.mss_patient) is None


def test_a_report_level_refusal_given_at_creation_still_blocks(session):
    """Existing callers pass refuse_mss_patient=True to the report: an override, it still blocks."""
    bundle = factories.validated_report(session, refuse_mss_patient=True)
    assert (bundle.refusals.mss_patient, bundle.refusals.mss_patient_source) == (True, "report")
    assert bundle.refusals.mss_ps is False
