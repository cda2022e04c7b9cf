"""A PAM-FR message whose identity holds a control character (a NUL, a vertical tab...) is answered AE over
the listener's socket with the field named, and no identity is created or changed."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from ris.store.models import InboundMessage, Patient
from tests.reliability.pam_messages import err, msa, pam

OWN = IntakePolicy(own_domain=frozenset({"GAM"}))


@pytest.mark.parametrize(("name", "code"), [("DUP\x00ONT", "0000"), ("DUP\x0bONT", "000B")])
async def test_a_control_character_in_a_name_is_refused_with_its_field(
    db_url: str, name: str, code: str
) -> None:
    async with PamIntake(OWN, database_url=db_url).listener() as server:
        refused = await mllp.exchange("127.0.0.1", server.port, pam(1, name=name), timeout=10)
        accepted = await mllp.exchange("127.0.0.1", server.port, pam(2), timeout=10)
    assert msa(refused)[1] == "AE" and f"holds a control character (U+{code})" in err(refused)
    assert "PID^1^5^1^1" in err(refused)  # ERR-2: PID-5.1
    assert msa(accepted)[1] == "AA"
    with Session(db.get_engine(db_url)) as s:
        assert s.exec(select(Patient.ipp)).all() == ["R00002"]
        assert [m.outcome for m in s.exec(select(InboundMessage).order_by(InboundMessage.id))] == [
            "rejected",
            "accepted",
        ]
