"""Outbound PAM-FR identity feed (INS rule 27, RIS.INS.34 / 36): outbox rows written with the change,
messages built per ins.md §8, accepted by the sandbox PFI's own checks; no echo of an inbound PAM message."""

from __future__ import annotations

import datetime as dt

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlmodel import Session, select

from ris.identity import propagation
from ris.identity.intake import IntakePolicy, PamIntake
from ris.identity.registry import (
    Change,
    apply_insi_identity,
    edit_identity,
    record_justificatif,
    set_attributes,
    validate_identity,
)
from ris.site.justificatifs import JustificatifPolicy
from ris.site.settings import SiteSettings
from ris.store.db import get_engine
from ris.store.models import (
    AuditEntry,
    IdentityStatus,
    OutboundMessage,
    OutboundStatus,
    Patient,
    WorklistItem,
)
from sandbox.pfi.identity import check_identity, nir_key_ok
from tests import factories
from tests.identity.helpers import CLERK, SUPER, adrtrois, adrtrois_insi
from tests.identity.test_pam import message as pam_message

TEST_INS = "279035121518989"
NOW = dt.datetime(2026, 3, 6, 10, 11, 54, tzinfo=dt.UTC)


def outbox(session: Session) -> list[OutboundMessage]:
    return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


def rendered(session: Session) -> list[str]:
    return [propagation.render(row, SiteSettings(), now=NOW) for row in outbox(session)]


def parsed(er7: str):
    return parse_message(er7.strip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)


def identifiers(field) -> list[tuple[str, str]]:
    return [(cx.cx_1.to_er7(), cx.cx_5.to_er7()) for cx in field]


def test_strict_trait_edit_of_a_qualified_identity_enqueues_a31_then_a47(session: Session) -> None:
    patient = factories.patient(session)
    session.commit()
    change = edit_identity(session, SUPER, patient, {"birth_date": dt.date(1979, 3, 29)})
    session.commit()
    rows = outbox(session)
    assert [r.message_type for r in rows] == ["ADT^A31^ADT_A05", "ADT^A47^ADT_A30"]
    assert change.prior_ins == (TEST_INS, "1.2.250.1.213.1.4.10")
    assert {(r.destination, r.status, r.attempts, r.payload) for r in rows} == {
        ("pfi", OutboundStatus.pending, 0, None)
    }
    assert len({r.control_id for r in rows}) == 2 and all(len(r.control_id) == 20 for r in rows)
    a31, a47 = (parsed(er7) for er7 in rendered(session))
    # Downgraded to VALI: the INS is gone from PID-3 (rule 28); the A47 names the list the PFI knew.
    assert identifiers(a31.pid.pid_3) == [(patient.ipp, "PI")]
    assert a31.pid.pid_7.to_er7() == "19790329"
    assert a31.pv1.pv1_2.to_er7() == "N"
    assert identifiers(a47.pid.pid_3) == [(patient.ipp, "PI")]
    assert identifiers(a47.mrg.mrg_1) == [(patient.ipp, "PI"), (TEST_INS, "INS")]
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "identity.propagate")).one()
    assert [m[3] for m in audit.detail["messages"]] == [r.control_id for r in rows]


def test_a_rolled_back_change_enqueues_nothing(session: Session) -> None:
    patient = factories.patient(session)
    session.commit()
    edit_identity(session, SUPER, patient, {"birth_name": "PAT-QUATRE"})
    assert len(outbox(session)) == 2  # flushed in the change's unit of work...
    session.rollback()
    assert outbox(session) == []  # ...and gone with it
    session.refresh(patient)
    assert (patient.status, patient.ins_matricule) == (IdentityStatus.QUAL, TEST_INS)


def test_messages_are_pam_fr_2_11_and_valid_hl7_v2_5(session: Session) -> None:
    patient = factories.patient(session)
    set_attributes(session, CLERK, patient, ["douteuse"])
    for er7 in rendered(session):
        message = parsed(er7)
        assert message.validate() is True
        msh = message.msh
        assert msh.msh_12.to_er7() == "2.5^FRA^2.11"
        assert msh.msh_21.to_er7() == "2.11^IHE_FRANCE-2.11-PAM"
        assert (msh.msh_17.to_er7(), msh.msh_18.to_er7(), msh.msh_19.to_er7()) == (
            "FRA",
            "UNICODE UTF-8",
            "FR",
        )
        assert message.evn.evn_2.to_er7() and message.pid.pid_32.to_er7()
        assert check_identity(er7)[1] is None  # the sandbox PFI's own reading of PAM-FR


def test_douteuse_on_a_held_ins_gives_a31_and_a47_otherwise_a31_only(session: Session) -> None:
    qualified = factories.patient(session)
    set_attributes(session, CLERK, qualified, ["douteuse"])
    provisional = factories.patient(session, qualified=False)
    set_attributes(session, CLERK, provisional, ["fictive"])
    by_patient = [(r.patient_id, r.message_type.split("^")[1]) for r in outbox(session)]
    assert by_patient == [(qualified.id, "A31"), (qualified.id, "A47"), (provisional.id, "A31")]
    a31 = parsed(rendered(session)[0])
    assert identifiers(a31.pid.pid_3) == [(qualified.ipp, "PI")]
    assert [r.to_er7() for r in a31.pid.pid_32] == ["PROV", "DOUT"]


def test_an_ins_that_never_left_gives_no_a47(session: Session) -> None:
    """RECUP holds an INS that rule 28 kept inside: the list downstream systems know does not change."""
    patient = adrtrois(session)
    apply_insi_identity(session, CLERK, patient, adrtrois_insi())  # PROV -> RECUP: A31 only
    assert patient.status is IdentityStatus.RECUP
    edit_identity(session, SUPER, patient, {"sex": "M"})  # RECUP -> PROV: A31 only
    assert [r.message_type.split("^")[1] for r in outbox(session)] == ["A31", "A31"]
    assert all(r.snapshot["ins"] is None and r.snapshot["prior_ins"] is None for r in outbox(session))


def test_qualification_adds_the_ins_with_an_a47(session: Session) -> None:
    patient = adrtrois(session)
    record_justificatif(session, CLERK, patient, "CNI", JustificatifPolicy())
    validate_identity(session, CLERK, patient)  # PROV -> VALI: A31
    apply_insi_identity(session, CLERK, patient, adrtrois_insi())  # VALI -> QUAL: A31 + A47
    assert patient.status is IdentityStatus.QUAL
    kinds = [r.message_type.split("^")[1] for r in outbox(session)]
    assert kinds == ["A31", "A31", "A47"]
    a47 = parsed(rendered(session)[2])
    assert identifiers(a47.pid.pid_3) == [(patient.ipp, "PI"), ("297022A02077878", "INS")]
    assert a47.pid.pid_3[1].cx_4.to_er7() == "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO"
    assert [r.to_er7() for r in a47.pid.pid_32] == ["VALI"]  # INS + VALI: qualified for PAM-FR (§8.2)
    assert identifiers(a47.mrg.mrg_1) == [(patient.ipp, "PI")]


def test_an_unknown_event_is_refused_and_changes_nothing(session: Session) -> None:
    change = Change(factories.patient(session), propagate=["A31", "A08"])
    with pytest.raises(propagation.PropagationError, match="propagate: 'A08'"):
        propagation.enqueue(session, change)
    assert outbox(session) == []


def test_the_payload_is_rendered_once_and_every_attempt_reuses_it(session: Session) -> None:
    set_attributes(session, CLERK, factories.patient(session, qualified=False), ["fictive"])
    row = outbox(session)[0]
    first = propagation.prepare(session, row.id, SiteSettings(), now=NOW)
    propagation.record_transient(session, row.id, "PFI 127.0.0.1:1: MSA AE: ERR-3 207")
    second = propagation.prepare(session, row.id, SiteSettings(), now=NOW + dt.timedelta(minutes=5))
    assert (first.number, second.number) == (1, 2)
    assert first.er7 == second.er7 == row.payload and row.control_id in first.er7
    assert row.status is OutboundStatus.pending and row.last_error.endswith("AE: ERR-3 207")
    propagation.record_rejected(session, row.id, "PFI 127.0.0.1:1: MSA AR: ERR-3 103 at PID^1^32")
    assert propagation.prepare(session, row.id, SiteSettings()).er7 is None  # final: never sent again
    item = session.exec(select(WorklistItem)).one()
    assert (item.kind, item.object_id) == ("identity-feed-rejected", str(row.patient_id))
    assert "ERR-3 103" in item.reason


def test_an_unrenderable_row_fails_with_the_field_and_no_data(session: Session) -> None:
    set_attributes(session, CLERK, factories.patient(session), ["douteuse"])
    row = outbox(session)[0]
    row.message_type = "ADT^A08^ADT_A01"
    attempt = propagation.prepare(session, row.id, SiteSettings())
    assert attempt.er7 is None and attempt.status is OutboundStatus.failed
    assert row.last_error == "message_type: 'ADT^A08^ADT_A01' is not an outbound PAM-FR event"


def test_pending_groups_per_patient_in_creation_order(session: Session) -> None:
    first, second = factories.patient(session), factories.patient(session)
    edit_identity(session, SUPER, first, {"birth_name": "PAT-QUATRE"})
    edit_identity(session, CLERK, second, {"used_name": "MARTIN"})
    set_attributes(session, CLERK, first, ["douteuse"])
    ids = [r.id for r in outbox(session)]
    assert propagation.pending(session) == [[ids[0], ids[1], ids[3]], [ids[2]]]
    propagation.record_acknowledged(session, ids[0], partner="PFI PFI^PFI-DEMO")
    assert propagation.pending(session) == [[ids[1], ids[3]], [ids[2]]]


@pytest.mark.parametrize(
    ("mutate", "code", "where"),
    [
        (lambda m: m.replace("2.11^IHE_FRANCE-2.11-PAM", "2.1^CISIS_CDA_HL7_V2"), "101", "MSH^1^21"),
        (lambda m: m.replace(TEST_INS, TEST_INS[:-2] + "00"), "102", "MRG^1^1"),
        (lambda m: m.replace("ASIP-SANTE-INS-NIR&", "ASIP-SANTE-INS-NIA&"), "103", "MRG^1^4"),
        (lambda m: m.replace("&1.2.250.1.213.1.4.10&", "&1.2.250.1.999&"), "103", "MRG^1^4"),
        (lambda m: m.split("\rMRG|")[0] + "\rMRG|", "199", ""),  # MRG-1 required by v2.5
        (lambda m: m.replace("|VALI\r", "|\r"), "101", "PID^1^32"),
        (lambda m: m.replace("|VALI\r", "|ZZZZ\r"), "103", "PID^1^32"),
        (lambda m: m.replace("|19790328|", "|1979-03-28|"), "199", ""),
    ],
)
def test_the_sandbox_refuses_broken_pam_fr(session: Session, mutate, code: str, where: str) -> None:
    edit_identity(session, SUPER, factories.patient(session), {"birth_name": "PAT-QUATRE"})
    a47 = rendered(session)[1]
    assert check_identity(a47)[1] is None
    _, problem = check_identity(mutate(a47))
    assert problem is not None and (problem.code, problem.location) == (code, where)


def test_nir_key() -> None:
    assert nir_key_ok(TEST_INS) and nir_key_ok("297022A02077878") and nir_key_ok("160012B02077713")
    assert not nir_key_ok("297022A02077877") and not nir_key_ok("29702")


async def test_an_inbound_pam_change_is_not_echoed(db_url: str) -> None:
    """The sender's référentiel governs these identities and already told the platform: no outbound."""
    intake = PamIntake(IntakePolicy(own_domain=frozenset({"GAM"})), database_url=db_url)
    codes = [
        await intake.handle(pam_message(event="A28", cid="1")),
        await intake.handle(pam_message(event="A31", cid="2", ins="", rel="PROV")),  # INS removed
    ]
    assert [c.split("\r")[1].split("|")[1] for c in codes] == ["AA", "AA"]
    with Session(get_engine(db_url)) as s:
        assert len(s.exec(select(Patient)).all()) == 1
        assert outbox(s) == []
