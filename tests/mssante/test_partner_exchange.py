"""INS rule 31 (RIS.INS.51) on the direct MSSanté route: each mail whose CDA carries the INS leaves a
partner-exchange row (the correspondent's address; the patient's mailbox named without its INS address)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from flows.report_lifecycle import report_lifecycle
from ris.store.db import session_scope
from ris.store.models import Channel, PartnerExchange
from tests import factories

pytestmark = pytest.mark.slow


async def test_every_direct_mail_carrying_the_ins_is_a_partner_exchange(direct_site):
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=1)
        report_id, version = bundle.report.id, bundle.version.version
        people = {bundle.requester.mss_address, *(c.mss_address for c, _ in bundle.recipients)}
        document_id = bundle.version.document_id
    state = await report_lifecycle(report_id, version, return_state=True)
    assert state.is_completed(), state
    with session_scope() as session:
        rows = session.exec(select(PartnerExchange).order_by(PartnerExchange.id)).all()
    mails = {(r.channel, r.partner) for r in rows if r.channel in (Channel.mss_ps, Channel.mss_patient)}
    assert mails == {
        *((Channel.mss_ps, address) for address in people),
        (Channel.mss_patient, "Mon espace santé (patient's MSSanté mailbox)"),
    }
    assert {r.document_id for r in rows if r.channel in (Channel.mss_ps, Channel.mss_patient)} == {
        document_id
    }
    assert not [r for r in rows if "@patient.mssante.fr" in r.partner]
