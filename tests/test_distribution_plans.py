"""What planning tells the flows is left to send (ris.lifecycle.distribution: VersionPlan, ReleasePlan,
DeletionPlan): a flow starts a task only for work that exists, so each plan must name exactly that work."""

from __future__ import annotations

from ris.lifecycle import distribution, reports
from ris.site.settings import DmpSending, MssanteSending, SiteSettings
from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from tests import factories

PFI = SiteSettings()
DIRECT = SiteSettings(
    mssante=MssanteSending(route_ps="direct", route_patient="direct"), dmp=DmpSending(route="direct")
)


def _plan(session, bundle, settings: SiteSettings = PFI) -> distribution.VersionPlan:
    plan = distribution.plan_version(
        session,
        bundle.report.id,
        bundle.version.version,
        pfi=settings.hl7.enabled,
        direct=distribution.direct_channels(settings),
        dmp=settings.dmp,
    )
    session.commit()
    return plan


def _rows(session, bundle) -> list[Delivery]:
    return deliveries.for_version(session, bundle.report.id, bundle.version.version)


def _settle(session, rows: list[Delivery], status: DeliveryStatus) -> None:
    for row in rows:
        deliveries.set_status(session, row, status, None)
    session.commit()


def test_on_the_pfi_route_only_the_pfi_message_is_left_to_send(session):
    bundle = factories.validated_report(session, copies=2)
    plan = _plan(session, bundle)
    assert plan.hl7 and plan.mss == () and plan.dmp == () and not plan.release
    assert plan.statuses["hl7"] == ["pending"] and plan.statuses["mss-ps"] == ["pending"] * 3


def test_the_direct_routes_name_each_copy_to_send_and_only_those(session):
    bundle = factories.validated_report(session, copies=1)
    plan = _plan(session, bundle, DIRECT)
    rows = _rows(session, bundle)
    direct_mss = {r.id for r in rows if r.route == "direct" and r.channel in distribution.MSS_CHANNELS}
    [direct_dmp] = [r.id for r in rows if r.route == "direct" and r.channel is Channel.dmp]
    assert set(plan.mss) == direct_mss and len(direct_mss) == 3  # requester, copy, patient
    assert plan.dmp == (direct_dmp,) and plan.hl7


def test_planning_again_leaves_out_what_already_left(session):
    bundle = factories.validated_report(session)
    _plan(session, bundle, DIRECT)
    _settle(session, _rows(session, bundle), DeliveryStatus.acknowledged)
    again = _plan(session, bundle, DIRECT)
    assert (again.hl7, again.mss, again.dmp, again.release) == (False, (), (), False)
    assert set(again.statuses["hl7"]) == {"acknowledged"}


def test_a_copy_held_for_the_announcement_is_released_by_the_lifecycle_only_once_it_was_recorded(session):
    bundle = factories.validated_report(session, announcement_required=True)
    waiting = _plan(session, bundle)
    assert waiting.statuses["mss-patient"] == ["waiting_announcement"] and not waiting.release

    reports.record_announcement(session, bundle.report.id, factories.RADIOLOGIST_RPPS)
    session.commit()
    assert _plan(session, bundle).release  # recorded meanwhile (a re-run): the lifecycle releases it


def test_a_release_through_the_pfi_waits_for_its_own_message_then_names_its_messages(session):
    bundle = factories.validated_report(session, announcement_required=True)
    _plan(session, bundle)
    reports.record_announcement(session, bundle.report.id, factories.RADIOLOGIST_RPPS)
    session.commit()
    rid = bundle.report.id
    assert distribution.plan_release(session, rid, 1) == distribution.ReleasePlan((), (), ())

    _settle(
        session,
        [r for r in _rows(session, bundle) if r.status is DeliveryStatus.pending],
        DeliveryStatus.acknowledged,
    )
    plan = distribution.plan_release(session, rid, 1)
    assert plan == distribution.ReleasePlan(("visibility", "release"), (), ())


def test_a_direct_release_names_the_visibility_update_and_the_patient_copy(session):
    bundle = factories.validated_report(session, announcement_required=True)
    _plan(session, bundle, DIRECT)
    own = [r for r in _rows(session, bundle) if r.status is DeliveryStatus.pending]
    _settle(session, own, DeliveryStatus.acknowledged)
    reports.record_announcement(session, bundle.report.id, factories.RADIOLOGIST_RPPS)
    session.commit()

    plan = distribution.plan_release(session, bundle.report.id, 1)
    rows = _rows(session, bundle)
    [update] = [r.id for r in rows if r.channel is Channel.dmp and r.action == distribution.VISIBILITY]
    [patient] = [r.id for r in rows if r.channel is Channel.mss_patient and r.action == distribution.RELEASE]
    assert plan == distribution.ReleasePlan((), (update,), (patient,))


def test_a_deletion_plans_everything_it_sends_at_once_and_nothing_for_a_report_that_never_left(session):
    never = factories.validated_report(session)
    _plan(session, never, DIRECT)
    assert distribution.plan_report_deletion(session, never.report.id, 1, notices=True) == (
        distribution.DeletionPlan(None, (), None)
    )

    bundle = factories.validated_report(session)
    _plan(session, bundle, DIRECT)
    _settle(session, _rows(session, bundle), DeliveryStatus.acknowledged)
    plan = distribution.plan_report_deletion(session, bundle.report.id, 1, notices=True)
    deletions = [r for r in _rows(session, bundle) if r.action == distribution.DELETE]
    assert plan.published == 1 and plan.dmp is not None
    assert set(plan.mss) == {r.id for r in deletions if r.channel in distribution.MSS_CHANNELS}
    assert distribution.plan_report_deletion(session, bundle.report.id, 1, notices=False).mss == ()
