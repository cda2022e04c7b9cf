"""Who a validated version goes to, per channel, and why a channel is blocked (ris.lifecycle.routing)."""

from __future__ import annotations

import pytest

from ris.lifecycle import routing
from ris.store.models import Channel, DeliveryStatus, IdentityStatus
from ris.store.models import utcnow as now
from tests import factories


def _by_channel(planned: list[routing.PlannedDelivery]) -> dict[Channel, list[routing.PlannedDelivery]]:
    grouped: dict[Channel, list[routing.PlannedDelivery]] = {}
    for item in planned:
        grouped.setdefault(item.channel, []).append(item)
    return grouped


def test_a_qualified_report_goes_everywhere_through_the_pfi(session):
    bundle = factories.validated_report(session, copies=2)
    everything = routing.plan(bundle, pfi=True)
    planned = _by_channel(everything)
    assert [p.recipient for p in planned[Channel.hl7]] == ["pfi"]
    assert all(p.status is DeliveryStatus.pending and p.route == "pfi" for p in everything)
    assert len(planned[Channel.mss_ps]) == 3  # requester + 2 copies, each with its MSSanté address
    assert planned[Channel.mss_patient][0].recipient == routing.PATIENT
    flags = routing.flags(routing.plan(bundle, pfi=True), bundle)
    assert (flags.dest_dmp, flags.dest_mss_ps, flags.dest_mss_patient) == (True, True, True)
    assert not (flags.mask_ps or flags.invisible_patient or flags.modif_conf_code)


@pytest.mark.parametrize("status", [IdentityStatus.PROV, IdentityStatus.RECUP, IdentityStatus.VALI])
def test_rule_28_blocks_the_patient_facing_channels(session, status):
    patient = factories.patient(session, qualified=False, status=status)
    if status is IdentityStatus.RECUP:  # a récupérée identity holds an INS, which still may not travel
        patient.ins_matricule, patient.ins_oid = "279035121518989", "1.2.250.1.213.1.4.10"
    bundle = factories.validated_report(session, patient_row=patient)
    planned = _by_channel(routing.plan(bundle, pfi=True))
    for channel in (Channel.dmp, Channel.mss_patient):
        (item,) = planned[channel]
        assert item.status is DeliveryStatus.blocked
        assert item.reason == f"identity status is {status.value}, not QUAL (INS rule 28)"
    assert all(p.status is DeliveryStatus.pending for p in planned[Channel.mss_ps])
    assert "Le patient — messagerie Mon espace santé" not in routing.listed_recipients(bundle)


def test_announcement_hides_the_report_from_the_patient_until_recorded(session):
    """RIS.CRR.02: DMP feed with INVISIBLE_PATIENT, no patient mail while the announcement is pending."""
    bundle = factories.validated_report(session, announcement_required=True)
    planned = routing.plan(bundle, pfi=True)
    patient = next(p for p in planned if p.channel is Channel.mss_patient)
    assert patient.status is DeliveryStatus.waiting_announcement
    flags = routing.flags(planned, bundle)
    assert flags.invisible_patient and flags.dest_dmp and not flags.dest_mss_patient
    bundle.report.announcement_recorded_at = now()
    planned = routing.plan(bundle, pfi=True)
    assert next(p for p in planned if p.channel is Channel.mss_patient).status is DeliveryStatus.pending
    assert not routing.flags(planned, bundle).invisible_patient


def test_user_block_of_the_dmp_feed(session):
    """RIS.DMP.03."""
    bundle = factories.validated_report(session, dmp_blocked=True)
    (dmp,) = [p for p in routing.plan(bundle, pfi=True) if p.channel is Channel.dmp]
    assert dmp.status is DeliveryStatus.blocked and "RIS.DMP.03" in dmp.reason
    assert routing.flags(routing.plan(bundle, pfi=True), bundle).dest_dmp is False


@pytest.mark.parametrize("confidentiality", ["R", "V"])
def test_restricted_confidentiality_is_not_shared_in_the_dmp(session, confidentiality):
    bundle = factories.validated_report(session, confidentiality=confidentiality)
    (dmp,) = [p for p in routing.plan(bundle, pfi=True) if p.channel is Channel.dmp]
    assert dmp.status is DeliveryStatus.blocked


def test_patient_refusals_are_honoured_and_the_recipient_list_follows(session):
    """RIS.MSS.21 and RIS.MSS.25: refusals recorded on the report; nothing goes, nothing is listed."""
    bundle = factories.validated_report(session, refuse_mss_patient=True, refuse_mss_ps=True, copies=1)
    planned = _by_channel(routing.plan(bundle, pfi=True))
    assert all(
        p.status is DeliveryStatus.blocked for p in planned[Channel.mss_ps] + planned[Channel.mss_patient]
    )
    assert "refused" in planned[Channel.mss_patient][0].reason
    assert routing.listed_recipients(bundle) == []


def test_masked_to_professionals_sends_no_professional_mail(session):
    """RIS.DMP.06: MASQUE_PS travels as a flag; no mail to professionals for a masked report."""
    bundle = factories.validated_report(session, mask_ps=True)
    planned = routing.plan(bundle, pfi=True)
    flags = routing.flags(planned, bundle)
    assert flags.mask_ps and not flags.dest_mss_ps and flags.dest_dmp


def test_a_correspondent_without_mssante_address_is_blocked_with_the_reason(session):
    bundle = factories.validated_report(session, copies=0)
    bundle.requester.mss_address = None
    (ps,) = [p for p in routing.plan(bundle, pfi=True) if p.channel is Channel.mss_ps]
    assert ps.status is DeliveryStatus.blocked and ps.reason == "correspondent has no MSSanté address"
    assert ps.recipient == f"rpps:{bundle.requester.rpps}"


def test_no_route_at_all_blocks_each_channel_with_the_reason(session):
    bundle = factories.validated_report(session)
    planned = routing.plan(bundle, pfi=False)
    assert {p.channel for p in planned} == {Channel.dmp, Channel.mss_ps, Channel.mss_patient}
    assert all(p.status is DeliveryStatus.blocked and p.reason.startswith("no route to") for p in planned)


def test_recipients_listed_on_the_report(session):
    """RIS.DOC.04: requester and copies with their addresses, and the patient's mailbox when it goes."""
    bundle = factories.validated_report(session, copies=1)
    lines = routing.listed_recipients(bundle)
    assert lines[0].startswith("Dr Hélène FRANÇOIS — helene.francois")
    assert lines[-1] == "Le patient — messagerie Mon espace santé"
    assert len(lines) == 3


def _refused_by_the_patient(session, bundle, channel: str, refused: bool = True):
    """The patient's refusal recorded at patient level (RIS.MSS.21 / RIS.MSS.25), then the bundle reloaded."""
    from ris.lifecycle import refusals
    from ris.store.reports import load_bundle

    refusals.record(session, bundle.patient, channel, refused, factories.RADIOLOGIST_RPPS)
    session.commit()
    return load_bundle(session, bundle.report.id)


def test_a_patient_level_refusal_blocks_every_report_of_the_patient(session):
    """RIS.MSS.21 and RIS.MSS.25: recorded once on the patient, it blocks with the same reasons."""
    first = factories.validated_report(session, copies=1)
    first = _refused_by_the_patient(session, first, "mss-patient")
    first = _refused_by_the_patient(session, first, "mss-ps")
    second = factories.validated_report(session, patient_row=first.patient, copies=0)
    for bundle in (first, second):
        planned = _by_channel(routing.plan(bundle, pfi=True))
        assert [p.reason for p in planned[Channel.mss_patient]] == [
            "patient refused sending to Mon espace santé"
        ]
        assert {p.reason for p in planned[Channel.mss_ps]} == {
            "patient refused sending to professionals by MSSanté"
        }
        assert all(
            p.status is DeliveryStatus.blocked for p in planned[Channel.mss_ps] + planned[Channel.mss_patient]
        )
        assert routing.listed_recipients(bundle) == []
        flags = routing.flags(routing.plan(bundle, pfi=True), bundle)
        assert (flags.dest_mss_ps, flags.dest_mss_patient, flags.dest_dmp) == (False, False, True)


def test_a_report_override_false_lets_the_refused_channel_through(session):
    """A per-report override (refuse_mss_* = False) wins over the patient's refusal, for this report only."""
    bundle = factories.validated_report(session, refuse_mss_patient=False, refuse_mss_ps=False, copies=0)
    bundle = _refused_by_the_patient(session, bundle, "mss-patient")
    bundle = _refused_by_the_patient(session, bundle, "mss-ps")
    planned = _by_channel(routing.plan(bundle, pfi=True))
    assert all(
        p.status is DeliveryStatus.pending for p in planned[Channel.mss_ps] + planned[Channel.mss_patient]
    )
    assert routing.listed_recipients(bundle)[-1] == "Le patient — messagerie Mon espace santé"
    other = factories.validated_report(session, patient_row=bundle.patient, copies=0)
    assert routing.flags(routing.plan(other, pfi=True), other).dest_mss_patient is False


def test_a_withdrawn_refusal_sends_again_unless_the_report_refuses(session):
    bundle = factories.validated_report(session, copies=0)
    bundle = _refused_by_the_patient(session, bundle, "mss-patient")
    bundle = _refused_by_the_patient(session, bundle, "mss-patient", refused=False)
    (patient,) = [p for p in routing.plan(bundle, pfi=True) if p.channel is Channel.mss_patient]
    assert patient.status is DeliveryStatus.pending
    refusing = factories.validated_report(session, patient_row=bundle.patient, refuse_mss_patient=True)
    (patient,) = [p for p in routing.plan(refusing, pfi=True) if p.channel is Channel.mss_patient]
    assert patient.reason == "patient refused sending to Mon espace santé"
