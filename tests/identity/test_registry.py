"""Identity référentiel rules on the store: 5, 6, 16, 19-21, 25-28, 31, 49."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from ris.identity import gate
from ris.identity.actors import OPERATOR, Actor
from ris.identity.errors import IdentityRuleError, PermissionDenied
from ris.identity.partners import record_partner_exchange
from ris.identity.registry import (
    apply_insi_identity,
    create_identity,
    edit_identity,
    identity_view,
    record_justificatif,
    set_attributes,
    validate_identity,
    verification_failed,
)
from ris.site.justificatifs import JustificatifPolicy
from ris.store.models import IdentityStatus, PartnerExchange, Patient, WorklistItem
from tests.identity.helpers import CLERK, READER, SUPER, adrtrois, adrtrois_insi, audits, history

FIVE = dict(
    birth_name="ADRTROIS",
    first_birth_given_name="DOMINIQUE",
    birth_date=dt.date(1997, 2, 26),
    sex="F",
    birth_place_code="2A020",
)


def qualified(session) -> Patient:
    p = adrtrois(session)
    record_justificatif(session, CLERK, p, "CNI", JustificatifPolicy())
    validate_identity(session, CLERK, p)
    apply_insi_identity(session, CLERK, p, adrtrois_insi())
    assert p.status is IdentityStatus.QUAL
    return p


def recovered(session) -> Patient:
    p = adrtrois(session)
    apply_insi_identity(session, CLERK, p, adrtrois_insi())
    assert p.status is IdentityStatus.RECUP
    return p


# --- rule 5 / 20 / 21 / 16: creation ----


def test_the_five_traits_are_enough_and_give_prov(session) -> None:
    p = create_identity(session, CLERK, **FIVE)
    assert p.status is IdentityStatus.PROV and p.ipp
    [row] = history(session, p)
    assert (row.previous, row.new, row.by) == (None, IdentityStatus.PROV, "clerk-1")
    created = audits(session, p, "identity.create")
    assert created and created[0].actor == "clerk-1" and created[0].at is not None


@pytest.mark.parametrize("missing", list(FIVE))
def test_each_of_the_five_traits_is_mandatory(session, missing: str) -> None:
    values = {**FIVE, missing: None}
    with pytest.raises(IdentityRuleError) as err:
        create_identity(session, CLERK, **values)
    assert str(err.value).startswith(f"{missing}:") and "INS rule 5" in str(err.value)
    assert session.exec(select(Patient)).all() == []


def test_unknown_birth_place_is_99999(session) -> None:
    assert (
        create_identity(session, CLERK, **{**FIVE, "birth_place_code": "99999"}).birth_place_code == "99999"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_name", "adrtrois"),
        ("first_birth_given_name", "DOMINIQUÉ"),
        ("sex", "X"),
        ("birth_place_code", "2A0"),
        ("birth_date", "1997-02-30"),
        ("birth_date", "1997-00-12"),
    ],
)
def test_bad_traits_are_refused_by_field(session, field: str, value) -> None:
    with pytest.raises(IdentityRuleError) as err:
        create_identity(session, CLERK, **{**FIVE, field: value})
    assert str(err.value).startswith(f"{field}:")


# --- rule 4: reads are audited, the INS needs ins.read ----


def test_view_hides_the_ins_without_permission_and_audits_reads(session) -> None:
    p = qualified(session)
    seen = identity_view(session, CLERK, p)
    assert seen["ins_matricule"] == "297022A02077878" and seen["ins_nature"] == "NIR"
    hidden = identity_view(session, READER, p)
    assert "hidden" in hidden["ins_matricule"] and hidden["ins_oid"] is None
    assert [a.actor for a in audits(session, p, "ins.read")] == ["clerk-1"]
    assert [a.actor for a in audits(session, p, "identity.read")] == ["reader-1"]


def test_writes_need_permission(session) -> None:
    with pytest.raises(PermissionDenied, match=r"identity\.write"):
        create_identity(session, Actor("nobody"), **FIVE)


# --- rules 6, 11, 12, 20: INSi import ----


def test_insi_overwrites_the_strict_traits_and_gives_recup(session) -> None:
    p = adrtrois(session, birth_place_code="99999", sex="F")
    change = apply_insi_identity(session, CLERK, p, adrtrois_insi(given_names="DOMINIQUE MARIE"))
    assert p.status is IdentityStatus.RECUP
    assert (p.ins_matricule, p.ins_oid) == ("297022A02077878", "1.2.250.1.213.1.4.8")
    assert (p.birth_given_names, p.birth_place_code, p.collection_mode) == (
        "DOMINIQUE MARIE",
        "2A020",
        "INSI",
    )
    assert "A47" in change.propagate
    assert [h.new for h in history(session, p)] == [IdentityStatus.PROV, IdentityStatus.RECUP]


def test_first_given_name_inconsistency_alerts_and_changes_nothing(session) -> None:
    p = adrtrois(session, first_birth_given_name="MARIE")
    with pytest.raises(IdentityRuleError) as err:
        apply_insi_identity(session, CLERK, p, adrtrois_insi())
    assert "INS rule 6" in str(err.value) and str(err.value).startswith("first_birth_given_name:")
    assert p.ins_matricule is None and p.status is IdentityStatus.PROV
    change = apply_insi_identity(session, CLERK, p, adrtrois_insi(), confirm_first_name=True)
    assert p.first_birth_given_name == "DOMINIQUE" and change.alerts


def test_vali_plus_insi_gives_qual(session) -> None:
    p = qualified(session)
    assert [h.new for h in history(session, p)] == [
        IdentityStatus.PROV,
        IdentityStatus.VALI,
        IdentityStatus.QUAL,
    ]
    assert gate.ins_transmissible(p)


# --- rule 19: justificatifs and validation ----


def test_manual_validation_needs_a_high_confidence_proof(session) -> None:
    p = adrtrois(session)
    with pytest.raises(IdentityRuleError, match="INS rule 19"):
        validate_identity(session, CLERK, p)
    record_justificatif(session, CLERK, p, "LIVRET_FAMILLE", JustificatifPolicy())
    with pytest.raises(IdentityRuleError, match="high-confidence"):
        validate_identity(session, CLERK, p)
    record_justificatif(session, CLERK, p, "PASSPORT", JustificatifPolicy())
    assert p.status is IdentityStatus.PROV  # automatic validation is off by default
    validate_identity(session, CLERK, p)
    assert p.status is IdentityStatus.VALI


def test_automatic_validation_is_a_site_switch(session) -> None:
    p = adrtrois(session)
    record_justificatif(session, CLERK, p, "CNI", JustificatifPolicy(auto_validate=True))
    assert p.status is IdentityStatus.VALI
    q = adrtrois(session)
    record_justificatif(session, CLERK, q, "CNI", JustificatifPolicy(auto_validate=False))
    assert q.status is IdentityStatus.PROV


def test_unknown_justificatif_is_refused(session) -> None:
    with pytest.raises(IdentityRuleError, match="site catalogue"):
        record_justificatif(session, CLERK, adrtrois(session), "LIBRARY_CARD", JustificatifPolicy())


# --- rules 26-27: strict traits ----


@pytest.mark.parametrize("builder", [qualified, recovered])
def test_strict_traits_are_read_only_without_super_user(session, builder) -> None:
    p = builder(session)
    before = (p.birth_name, p.ins_matricule, p.status)
    n_audit = len(audits(session, p))
    with pytest.raises(IdentityRuleError) as err:
        edit_identity(session, CLERK, p, {"birth_name": "ADRQUATRE"})
    assert "INS rule 26" in str(err.value) and str(err.value).startswith("birth_name:")
    assert (p.birth_name, p.ins_matricule, p.status) == before
    assert len(audits(session, p)) == n_audit


@pytest.mark.parametrize(
    ("builder", "lower"), [(qualified, IdentityStatus.VALI), (recovered, IdentityStatus.PROV)]
)
def test_super_user_edit_downgrades_and_drops_the_ins(session, builder, lower) -> None:
    p = builder(session)
    change = edit_identity(session, SUPER, p, {"birth_date": dt.date(1997, 2, 27)})
    assert p.status is lower
    assert p.ins_matricule is None and p.ins_oid is None
    assert change.propagate == ["A31", "A47"]
    assert history(session, p)[-1].reason.endswith("(INS rule 27)")
    edit = audits(session, p, "identity.edit")[-1]
    assert edit.actor == "super-1" and edit.detail["fields"]["birth_date"] == ["1997-02-26", "1997-02-27"]
    assert not gate.ins_transmissible(p)


def test_complementary_traits_stay_editable(session) -> None:
    p = qualified(session)
    change = edit_identity(session, CLERK, p, {"used_name": "MARTIN", "used_given_name": "DOM"})
    assert p.status is IdentityStatus.QUAL and p.ins_matricule
    assert change.propagate == ["A31"]


def test_the_ins_itself_is_never_typed(session) -> None:
    with pytest.raises(IdentityRuleError, match="INS rule 6"):
        edit_identity(session, SUPER, adrtrois(session), {"ins_matricule": "297022A02077878"})


# --- rule 25: douteuse / fictive ----


@pytest.mark.parametrize("attribute", ["douteuse", "fictive"])
def test_doubtful_or_fictitious_goes_prov_and_loses_the_ins(session, attribute: str) -> None:
    p = qualified(session)
    set_attributes(session, CLERK, p, [attribute])
    assert p.status is IdentityStatus.PROV and p.ins_matricule is None
    with pytest.raises(IdentityRuleError, match="INS rule 25"):
        apply_insi_identity(session, CLERK, p, adrtrois_insi())
    with pytest.raises(IdentityRuleError, match="INS rule 25"):
        validate_identity(session, CLERK, p)


def test_homonyme_changes_no_status(session) -> None:
    p = qualified(session)
    set_attributes(session, CLERK, p, ["homonyme"])
    assert p.status is IdentityStatus.QUAL
    with pytest.raises(IdentityRuleError, match="INS rule 25"):
        set_attributes(session, CLERK, p, ["usurpee"])


# --- rule 49 and rule 31 ----


def test_verification_ko_demotes_and_opens_a_worklist_item(session) -> None:
    p = qualified(session)
    verification_failed(session, CLERK, p, detail="INSi verification KO")
    assert p.status is IdentityStatus.PROV and p.ins_matricule is None
    [item] = session.exec(select(WorklistItem)).all()
    assert item.kind == "insi-verification-ko" and item.object_id == str(p.id)


def test_partner_exchange_is_traced(session) -> None:
    p = qualified(session)
    record_partner_exchange(session, p, "DMP", "dmp", "2.25.1")
    [row] = session.exec(select(PartnerExchange)).all()
    assert (row.partner, row.channel.value, row.document_id) == ("DMP", "dmp", "2.25.1")
    assert audits(session, p, "ins.partner_exchange")


def test_operator_has_no_super_user_permission() -> None:
    assert "identity.superuser" not in OPERATOR
