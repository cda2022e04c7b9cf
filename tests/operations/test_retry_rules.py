"""What an administrator's retry selects and how it reopens it (store side, no peer): every channel has a
sender, a copy that failed with its message goes with the message, what went is never selected, the
request is audited, and an interrupted retry is selected again."""

from __future__ import annotations

import pytest
from sqlmodel import select

from ris.channels.hl7.publish import RELAY_FAILED
from ris.lifecycle import distribution
from ris.operations import retry
from ris.store import deliveries
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus
from ris.store.reports import load_bundle
from tasks.retry import SENDERS
from tests import factories

ADMIN = "10001234567"


def _planned(session, *, direct=frozenset()):
    bundle = factories.validated_report(session)
    rid = bundle.report.id
    distribution.plan_version(session, rid, 1, pfi=True, direct=direct)
    session.commit()
    return rid, {(d.channel, d.recipient): d for d in deliveries.for_version(session, rid, 1)}


def _set(session, row, status, reason=None):
    deliveries.set_status(session, row, status, reason)
    session.commit()


def test_every_kind_of_delivery_has_a_sender(session):
    _, rows = _planned(session, direct=frozenset({Channel.mss_ps}))
    kinds = {retry.sender_key(row) for row in rows.values()}
    assert kinds == {"hl7", "relay", "direct:mss-ps"}
    assert {"hl7", "relay", "direct:dmp", "direct:mss-ps", "direct:mss-patient", "reminder"} <= set(SENDERS)


def test_copies_failed_by_their_message_go_with_it_and_receipt_failures_go_alone(session):
    rid, rows = _planned(session)
    hl7, dmp = rows[(Channel.hl7, "pfi")], rows[(Channel.dmp, "dmp")]
    ps = next(r for (c, _), r in rows.items() if c is Channel.mss_ps)
    _set(session, hl7, DeliveryStatus.failed, "rejected by the PFI: AR")
    _set(session, dmp, DeliveryStatus.failed, RELAY_FAILED + "rejected by the PFI: AR")
    units, skipped = retry.select_units(session, report_id=rid)
    assert [(u.kind, u.delivery_ids) for u in units] == [("hl7", (hl7.id,))] and skipped == []

    _set(session, hl7, DeliveryStatus.acknowledged, "ACK AA")  # filed; then two receipts failed
    _set(session, dmp, DeliveryStatus.failed, "ZAM Z01: DMP refused the document (DMPClosed)")
    _set(session, ps, DeliveryStatus.failed, "ZAM Z02: MSSanté delivery failed (SMTPERRORCODE 550)")
    units, _ = retry.select_units(session, channel=None, report_id=rid)
    assert [(u.kind, sorted(u.delivery_ids), u.action) for u in units] == [
        ("relay", sorted([dmp.id, ps.id]), "initial")
    ]
    units, _ = retry.select_units(session, channel=Channel.dmp)
    assert [u.delivery_ids for u in units] == [(dmp.id,)]


def test_what_went_is_never_selected_and_a_replaced_version_is_not_sent(session):
    rid, rows = _planned(session)
    hl7 = rows[(Channel.hl7, "pfi")]
    _set(session, hl7, DeliveryStatus.acknowledged, "ACK AA")
    units, skipped = retry.select_units(session, delivery_ids=[hl7.id])
    assert units == [] and skipped == [f"delivery {hl7.id} is acknowledged: nothing to retry"]
    with pytest.raises(retry.RetryRuleError, match="delivery 999999: no such delivery"):
        retry.select_units(session, delivery_ids=[999999])

    dmp = rows[(Channel.dmp, "dmp")]
    _set(session, dmp, DeliveryStatus.failed, "ZAM Z01: DMP refused the document (DMPClosed)")
    bundle = load_bundle(session, rid)
    bundle.report.version = 2  # a replacement was validated since
    session.add(bundle.report)
    session.commit()
    units, skipped = retry.select_units(session, report_id=rid)
    assert units == [] and skipped == [f"delivery {dmp.id}: not retried, version 1 was replaced by version 2"]


def test_a_retry_is_audited_and_an_interrupted_one_is_selected_again(session):
    rid, rows = _planned(session)
    hl7, dmp = rows[(Channel.hl7, "pfi")], rows[(Channel.dmp, "dmp")]
    _set(session, hl7, DeliveryStatus.acknowledged, "ACK AA")
    _set(session, dmp, DeliveryStatus.failed, "ZAM Z01: DMP refused the document (DMPClosed)")
    [unit], _ = retry.select_units(session, report_id=rid)
    for actor, reason, field in ((ADMIN, " ", "--reason"), ("", "DMP reopened", "actor")):
        with pytest.raises(retry.RetryRuleError, match=field):
            retry.reopen(session, unit, actor=actor, reason=reason)
    session.rollback()
    assert session.get(Delivery, dmp.id).status is DeliveryStatus.failed  # nothing changed

    dispatch = retry.reopen(session, unit, actor=ADMIN, reason="DMP reopened", run="run-1")
    session.commit()
    resend = session.get(Delivery, dispatch.delivery_id)
    assert (dispatch.kind, resend.channel, resend.action) == ("relay", Channel.hl7, "initial-r1")
    assert resend.idempotency_key != hl7.idempotency_key  # a new MSH-10: the PFI filed the first
    assert session.get(Delivery, dmp.id).status is DeliveryStatus.pending
    [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "delivery.retry")).all()
    assert (entry.actor, entry.object_id) == (ADMIN, str(dmp.id))
    assert entry.detail["reason"] == "DMP reopened" and entry.detail["run"] == "run-1"

    # Interrupted before it sent: selected again, and the same resend message (same MSH-10) is reused.
    [again], _ = retry.select_units(session, report_id=rid)
    assert again.delivery_ids == (dmp.id,)
    assert retry.reopen(session, again, actor=ADMIN, reason="again").delivery_id == resend.id


def test_a_new_address_only_for_a_professional_copy(session):
    _, rows = _planned(session)
    dmp = rows[(Channel.dmp, "dmp")]
    ps = next(r for (c, _), r in rows.items() if c is Channel.mss_ps)
    _set(session, rows[(Channel.hl7, "pfi")], DeliveryStatus.acknowledged, "ACK AA")
    for row in (dmp, ps):
        _set(session, row, DeliveryStatus.failed, "ZAM Z02: MSSanté delivery failed (SMTPERRORCODE 550)")
    [dmp_unit], _ = retry.select_units(session, delivery_ids=[dmp.id])
    with pytest.raises(retry.RetryRuleError, match="--to: only an MSSanté copy to a professional"):
        retry.reopen(session, dmp_unit, actor=ADMIN, reason="moved", to="new@x.mssante.fr")
    session.rollback()
    [ps_unit], _ = retry.select_units(session, delivery_ids=[ps.id])
    with pytest.raises(retry.RetryRuleError, match="not an e-mail address"):
        retry.reopen(session, ps_unit, actor=ADMIN, reason="moved", to="nobody")
    session.rollback()
    old = ps.recipient
    retry.reopen(session, ps_unit, actor=ADMIN, reason="moved", to="new.address@hopital.mssante.fr")
    session.commit()
    assert session.get(Delivery, ps.id).recipient == "new.address@hopital.mssante.fr"
    changed = session.exec(select(AuditEntry).where(AuditEntry.action.endswith("_changed"))).all()
    assert {(e.action, e.detail["previous"], e.detail["new"], e.actor) for e in changed} == {
        ("delivery.recipient_changed", old, "new.address@hopital.mssante.fr", ADMIN),
        ("correspondent.mss_address_changed", old, "new.address@hopital.mssante.fr", ADMIN),
    }


def test_a_request_names_who_and_why_and_a_new_address_is_for_one_delivery():
    assert retry.check_request(f" {ADMIN} ", " DMP   reopened ") == (ADMIN, "DMP reopened")
    with pytest.raises(retry.RetryRuleError, match="to: give the one delivery"):
        retry.check_request(ADMIN, "moved", to="a@b.fr", delivery_ids=[1, 2])
    with pytest.raises(retry.RetryRuleError, match="--reason: at most 200"):
        retry.check_request(ADMIN, "x" * 201)
