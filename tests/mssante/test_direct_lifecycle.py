"""End to end over real sockets: the lifecycle, announcement and deletion flows on a Prefect server send
the direct MSSanté copies through the sandbox operator (mutual TLS, DSN), the PFI still relaying the DMP."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlmodel import select

from flows.announcement import announcement_release
from flows.report_deletion import report_deletion
from flows.report_lifecycle import report_lifecycle
from ris.lifecycle import refusals, reports
from ris.operations.summary import report_summary
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from tests import factories

pytestmark = pytest.mark.slow


def _validated(refuse: str | None = None, **kwargs) -> tuple[str, int, list[str]]:
    with session_scope() as session:
        bundle = factories.validated_report(session, **kwargs)
        if refuse:
            refusals.record(session, bundle.patient, refuse, True, factories.RADIOLOGIST_RPPS, "mineure")
        people = [bundle.requester.mss_address, *(c.mss_address for c, _ in bundle.recipients)]
        return bundle.report.id, bundle.version.version, list(dict.fromkeys(people))


def _rows(report_id: str) -> list[Delivery]:
    with session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.report_id == report_id)).all())


def _mails(operator) -> dict[str, list]:
    by_rcpt: dict[str, list] = {}
    for received in operator.accepted():
        for rcpt in received.rcpt_tos:
            by_rcpt.setdefault(rcpt, []).append(message_from_bytes(received.data, policy=default_policy))
    return by_rcpt


async def test_requester_each_correspondent_and_the_patient_get_exactly_one_mail(direct_site):
    report_id, version, people = _validated(copies=2)
    state = await report_lifecycle(report_id, version, return_state=True)
    assert state.is_completed(), state
    outcome = await state.result()
    assert outcome["hl7"] == "acknowledged"
    assert sorted(outcome["mss"].values()) == ["sent"] * 4
    mails = _mails(direct_site)
    assert sorted(mails) == sorted([*people, "279035121518989@patient.mssante.fr"])
    assert all(len(m) == 1 for m in mails.values())
    rows = {r.recipient: r for r in _rows(report_id) if r.channel in (Channel.mss_ps, Channel.mss_patient)}
    for address, [mail] in mails.items():
        row = rows["patient" if address.endswith("@patient.mssante.fr") else address]
        assert row.route == "direct" and row.status is DeliveryStatus.sent
        assert mail["Message-ID"] == f"<{row.external_id}>"
        assert next(p.get_filename() for p in mail.iter_attachments()) == "IHE_XDM.zip"
    assert all(e.client_subject for e in direct_site.envelopes)  # every mail over mutual TLS
    # A second run of the same version sends nothing again.
    await report_lifecycle(report_id, version)
    assert len(direct_site.received) == 4
    with session_scope() as session:
        channels = report_summary(session, report_id)["channels"]
    assert channels["mss-ps"] == "sent" and channels["dmp"] in ("sent", "acknowledged")


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [({"qualified": False}, None), ({}, "mss-patient"), ({"announcement_required": True}, None)],
    ids=["identity-not-qualified", "patient-refused", "announcement-pending"],
)
async def test_no_patient_mail_when_a_condition_forbids_it(direct_site, kwargs, refusal):
    report_id, version, people = _validated(refusal, copies=0, **kwargs)
    await report_lifecycle(report_id, version)
    assert sorted(_mails(direct_site)) == people
    [patient] = [r for r in _rows(report_id) if r.channel is Channel.mss_patient]
    assert patient.status in (DeliveryStatus.blocked, DeliveryStatus.waiting_announcement)


async def test_announcement_releases_the_patient_mail_once(direct_site):
    report_id, version, _ = _validated(copies=0, announcement_required=True)
    await report_lifecycle(report_id, version)
    assert not any(r.endswith("@patient.mssante.fr") for r in _mails(direct_site))
    with session_scope() as session:
        reports.record_announcement(session, report_id, factories.RADIOLOGIST_RPPS)
    await announcement_release(report_id, version)
    await announcement_release(report_id, version)
    patient_mails = [r for r in direct_site.accepted() if r.rcpt_tos[0].endswith("@patient.mssante.fr")]
    assert len(patient_mails) == 1
    [row] = [r for r in _rows(report_id) if r.channel is Channel.mss_patient]
    assert row.action == "release" and row.status is DeliveryStatus.sent


async def test_4xx_then_success_delivers_once_with_the_same_message_id(direct_site):
    report_id, version, _people = _validated(copies=0)
    direct_site.transient_failures = 1
    await report_lifecycle(report_id, version)
    mss = [r for r in _rows(report_id) if r.channel in (Channel.mss_ps, Channel.mss_patient)]
    assert all(r.status is DeliveryStatus.sent for r in mss)
    assert sorted(r.attempts for r in mss) == [1, 2]  # whichever mail got the 451 went again
    assert all(len(direct_site.by_message_id(r.external_id)) == 1 for r in mss)
    assert len(direct_site.received) == 2


async def test_5xx_fails_the_delivery_with_the_code(direct_site):
    report_id, version, people = _validated(copies=0)
    direct_site.data_reply = "554 5.7.1 Destinataire inconnu de l'annuaire"
    await report_lifecycle(report_id, version)
    [requester] = [r for r in _rows(report_id) if r.recipient == people[0]]
    assert requester.status is DeliveryStatus.failed and requester.attempts == 1
    assert requester.reason.startswith("SMTP 554 5.7.1")


async def test_deletion_notice_goes_to_each_recipient_reached(direct_site):
    report_id, version, _people = _validated(copies=1)
    await report_lifecycle(report_id, version)
    with session_scope() as session:
        reports.delete(session, report_id, "examen d'un autre patient", factories.RADIOLOGIST_RPPS)
    await report_deletion(report_id, version)
    notices = [
        message_from_bytes(r.data, policy=default_policy)
        for r in direct_site.accepted()
        if "supprimé" in message_from_bytes(r.data, policy=default_policy).get_body(("plain",)).get_content()
    ]
    assert len(notices) == 3  # requester, correspondent, patient
