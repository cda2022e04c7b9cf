"""RIS.MSS.06 end to end: the operator's certificate revoked by its CA (OCSP on loopback), the lifecycle's
MSSanté copies fail at once with the reason naming the SMTP link, nothing leaves, and the receipts run
refuses the IMAP mailbox the same way; once the operator presents a new certificate, the administrator's
retry sends each copy once and their DSN are read."""

from __future__ import annotations

import re

import pytest

from flows.delivery_retry import retry_delivery
from flows.mss_receipts import mss_receipts
from flows.report_lifecycle import report_lifecycle
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from tests import factories

pytestmark = pytest.mark.slow
REVOKED = (
    r"the server's certificate localhost \(serial [0-9a-f]+\) is revoked on .* UTC \(OCSP http://127\.0\.0\.1"
)


def _mss(report_id: str) -> list[Delivery]:
    with session_scope() as session:
        return [
            d
            for d in deliveries.for_report(session, report_id)
            if d.channel in (Channel.mss_ps, Channel.mss_patient)
        ]


async def test_a_revoked_operator_fails_the_copies_then_the_retry_sends_them_once_replaced(direct_site):
    operator = direct_site
    with session_scope() as session:
        report_id = factories.validated_report(session, copies=0).report.id
    operator.revoke_server_certificate()

    await report_lifecycle(report_id, 1)
    copies = _mss(report_id)
    assert len(copies) == 2 and {d.status for d in copies} == {DeliveryStatus.failed}
    for copy in copies:
        assert copy.attempts == 1, copy.reason  # refused for good: not retried
        assert re.match(f"^MSSanté SMTP localhost:{operator.port}: {REVOKED}", copy.reason)
    assert operator.received == []

    state = await mss_receipts(return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=f"^MSSanté IMAP localhost:{operator.mailbox.port}: {REVOKED}"):
        await state.result()
    assert operator.mailbox.logins() == []

    operator.replace_server_certificate()
    outcome = await retry_delivery("the operator renewed its certificate", report_id=report_id)
    assert set(outcome.values()) == {"sent"}
    assert len(operator.accepted()) == 2 and not any(r.duplicate for r in operator.received)
    assert (await mss_receipts())["receipts"] == 2
    assert {d.status for d in _mss(report_id)} == {DeliveryStatus.acknowledged}
