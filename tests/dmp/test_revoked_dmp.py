"""The same TLS policy on the DMP link, end to end: the DMP's certificate revoked by its CA, the direct
feed fails at once with the reason naming the link and nothing is posted; once the DMP presents a new
certificate, the administrator's retry feeds the document once."""

from __future__ import annotations

import re

import pytest

from flows.delivery_retry import retry_delivery
from flows.report_lifecycle import report_lifecycle
from ris.store import deliveries
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from tests import factories

pytestmark = pytest.mark.slow


def _dmp(report_id: str) -> Delivery:
    with session_scope() as session:
        [row] = [d for d in deliveries.for_report(session, report_id) if d.channel is Channel.dmp]
        return row


async def test_a_revoked_dmp_fails_the_feed_then_the_retry_feeds_it_once_replaced(direct_site):
    dmp = direct_site
    with session_scope() as session:
        report_id = factories.validated_report(session, copies=0).report.id
    dmp.revoke_server_certificate()

    await report_lifecycle(report_id, 1)
    row = _dmp(report_id)
    assert row.status is DeliveryStatus.failed and row.attempts == 1
    revoked = r"the server's certificate localhost \(serial [0-9a-f]+\) is revoked on .* UTC \(OCSP http://"
    assert re.match(f"^DMP localhost:{dmp.port}: {revoked}", row.reason)
    assert dmp.received == [] and dmp.documents() == []

    dmp.replace_server_certificate()
    outcome = await retry_delivery("the DMP renewed its certificate", report_id=report_id)
    assert outcome == {str(row.id): "acknowledged"}
    assert len(dmp.documents()) == 1 and _dmp(report_id).status is DeliveryStatus.acknowledged
