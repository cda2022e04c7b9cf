"""PAM-FR intake (RIS.INS.55-57; rules 25, 30, 51, 52, 55): store, apply, acknowledge; MLLP and files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from ris.identity.pam import PamError, parse
from ris.store import db
from ris.store.models import AuditEntry, Exam, IdentityStatus, InboundMessage, Patient, WorklistItem
from tests.identity.conftest import settings_for
from tests.identity.helpers import run_verifications

MSH = (
    "MSH|^~\\&|{app}|CHU-X|RIS|CIM|20240306111154||ADT^{event}^ADT_A05|{cid}|P|2.5^FRA^2.11|||||FRA|"
    "UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM"
)
PAT_TROIS = (
    "PID|1||{ipp}^^^CHU-X&000897406&N^PI{ins}||PAT-TROIS^DOMINIQUE^DOMINIQUE MARIE-LOUISE^^^^L~"
    "MARTIN^DOMI^^^^^D||19790328|F|||28 Av de Breteuil^^PARIS^^75007^FRA^H~^^^^^^BDL^^63220|||||S||"
    "24000006^^^CHU-X&000897406&M^AN"
    "|||||||1|||||N||{rel}|20240306111153"
)
INS_TEST = "~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20101207"
ADRTROIS = (
    "PID|1||{ipp}^^^HOP-Y&000000001&N^PI~297022A02077878^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||"
    "ADRTROIS^DOMINIQUE^DOMINIQUE^^^^L||{dob}|F|||^^^^^^BDL^^2A020"
    "|||||||||||||||||||||{rel}"
)
OWN = IntakePolicy(own_domain=frozenset({"GAM"}))


def message(
    event="A28",
    cid="1001",
    app="GAM",
    ipp="000003",
    ins=INS_TEST,
    rel="VALI",
    pid=PAT_TROIS,
    extra="",
    dob="19970226",
) -> str:
    segs = [
        MSH.format(app=app, event=event, cid=cid),
        "EVN||20240306111154",
        pid.format(ipp=ipp, ins=ins, rel=rel, dob=dob),
        "PV1|1|N",
    ]
    return "\r".join(segs + ([extra] if extra else [])) + "\r"


def msa(ack: str) -> list[str]:
    return ack.split("\r")[1].split("|")


def patients(db_url) -> list[Patient]:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(Patient).order_by(Patient.id)).all())


def inbound(db_url) -> list[InboundMessage]:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(InboundMessage).order_by(InboundMessage.id)).all())


def test_parse_reads_pid_3_5_11_32() -> None:
    m = parse(message())
    i = m.identity
    assert (i.ipp, i.ins_matricule, i.ins_oid) == ("000003", "279035121518989", "1.2.250.1.213.1.4.10")
    assert (i.birth_name, i.first_birth_given_name, i.birth_given_names) == (
        "PAT-TROIS",
        "DOMINIQUE",
        "DOMINIQUE MARIE-LOUISE",
    )
    assert (i.used_name, i.used_given_name, i.birth_place_code, i.reliability) == (
        "MARTIN",
        "DOMI",
        "63220",
        ["VALI"],
    )
    assert m.header.version == "2.5" and m.header.event == "A28"


def test_parse_errors_name_the_field() -> None:
    with pytest.raises(PamError, match="MSH-9"):
        parse(message(event="A99"))
    with pytest.raises(PamError, match="PID-7"):
        parse(message().replace("|19790328|", "|1979-03-28|"))
    with pytest.raises(PamError, match="birth date 2199-03-28 is in the future"):
        parse(message().replace("|19790328|", "|21990328|"))
    with pytest.raises(PamError, match="MRG-1"):
        parse(message(event="A47"))


async def test_own_domain_ins_with_vali_is_qualified(db_url) -> None:
    ack = await PamIntake(OWN).handle(message())
    assert msa(ack)[:3] == ["MSA", "AA", "1001"] and "ACK^A28^ACK" in ack
    [p] = patients(db_url)
    assert p.status is IdentityStatus.QUAL and p.ins_matricule == "279035121518989"
    assert (p.used_name, p.birth_place_code) == ("MARTIN", "63220")
    [row] = inbound(db_url)
    assert row.outcome == "accepted" and row.control_id == "1001" and row.sender == "GAM^CHU-X"


async def test_own_domain_ins_without_vali_is_not_kept(db_url) -> None:
    await PamIntake(OWN).handle(message(rel="PROV"))
    [p] = patients(db_url)
    assert p.status is IdentityStatus.PROV and p.ins_matricule is None and p.birth_name == "PAT-TROIS"


async def test_fictitious_identity_keeps_no_ins(db_url) -> None:
    await PamIntake(OWN).handle(message(rel="PROV~FICT"))
    [p] = patients(db_url)
    assert p.ins_matricule is None and p.attributes == ["fictive"]


async def test_duplicate_control_id_is_acknowledged_not_reprocessed(db_url) -> None:
    intake = PamIntake(OWN)
    await intake.handle(message())
    again = await intake.handle(message().replace("PAT-TROIS^DOMINIQUE", "AUTRE^DOMINIQUE"))
    assert msa(again)[1] == "AA"
    assert [p.birth_name for p in patients(db_url)] == ["PAT-TROIS"] and len(inbound(db_url)) == 1


async def test_bad_message_gets_ae_with_err_and_changes_nothing(db_url) -> None:
    ack = await PamIntake(OWN).handle(message().replace("|19790328|", "||"))
    assert msa(ack)[1] == "AE"
    err = next(s for s in ack.split("\r") if s.startswith("ERR"))
    assert "PID^1^7" in err and "birth_date" in err and "INS rule 5" in err
    assert patients(db_url) == []
    [row] = inbound(db_url)
    assert row.outcome == "rejected" and "birth_date" in row.error


async def test_unsupported_event_and_garbage_get_ar(db_url) -> None:
    intake = PamIntake(OWN)
    assert msa(await intake.handle(message(event="A99")))[1] == "AR"
    assert msa(await intake.handle("HELLO\r"))[1] == "AR"
    assert patients(db_url) == [] and len(inbound(db_url)) == 2


async def test_update_and_ins_removal(db_url) -> None:
    intake = PamIntake(OWN)
    await intake.handle(message())
    await intake.handle(message(event="A31", cid="1002").replace("MARTIN^DOMI", "DURAND^DOMI"))
    assert patients(db_url)[0].used_name == "DURAND"
    a47 = message(
        event="A47", cid="1003", ipp="000004", ins="", rel="PROV", extra="MRG|000003^^^CHU-X&000897406&N^PI"
    )
    assert msa(await intake.handle(a47))[1] == "AA"
    [p] = patients(db_url)
    assert (p.ipp, p.ins_matricule, p.status) == ("000004", None, IdentityStatus.PROV)


async def test_merge_moves_the_exams(db_url, session) -> None:
    intake = PamIntake(OWN)
    await intake.handle(message(ipp="A1"))
    await intake.handle(message(ipp="A2", cid="1002"))
    first = patients(db_url)[0]
    from tests.factories import validated_report

    validated_report(session, patient_row=session.get(Patient, first.id))
    ack = await intake.handle(
        message(event="A40", cid="1003", ipp="A2", extra="MRG|A1^^^CHU-X&000897406&N^PI")
    )
    assert msa(ack)[1] == "AA"
    with Session(db.get_engine(db_url)) as s:
        [exam] = s.exec(select(Exam)).all()
        assert s.get(Patient, exam.patient_id).ipp == "A2"


async def test_other_domain_ins_is_verified_and_recovered(db_url, insi_client, insi_sandbox) -> None:
    ack = await PamIntake(IntakePolicy()).handle(message(app="HOPY", pid=ADRTROIS, ipp="Y1"))
    assert msa(ack)[1] == "AA"  # acknowledged before INSi is asked (rule 52: by a run of its own)
    [p] = patients(db_url)
    assert p.status is IdentityStatus.PROV and p.ins_matricule is None  # kept apart until verified
    assert await run_verifications(insi_client, db_url) == ["verified"]
    [p] = patients(db_url)
    assert p.status is IdentityStatus.RECUP and p.ins_matricule == "297022A02077878"  # rule 30: requalified
    assert insi_sandbox.received[0]["operation"] == "verifierIdentite"


async def test_trusted_sender_for_a_site_not_caring_directly_gives_qual(db_url, insi_client) -> None:
    policy = IntakePolicy(trusted_senders=frozenset({"HOPY"}), cares_directly=False)
    await PamIntake(policy).handle(message(app="HOPY", pid=ADRTROIS, ipp="Y1"))
    assert await run_verifications(insi_client, db_url) == ["verified"]
    assert patients(db_url)[0].status is IdentityStatus.QUAL


async def test_verification_ko_creates_without_ins_or_leaves_known_untouched(db_url, insi_client) -> None:
    intake = PamIntake(IntakePolicy())
    await intake.handle(message(app="HOPY", pid=ADRTROIS, ipp="Y1", dob="19970227"))
    assert await run_verifications(insi_client, db_url) == ["refused"]
    [p] = patients(db_url)
    assert p.ins_matricule is None and p.status is IdentityStatus.PROV  # RIS.INS.45
    await intake.handle(
        message(app="HOPY", pid=ADRTROIS.replace("ADRTROIS^", "ADRQUATRE^"), ipp="Y1", cid="1002")
    )
    assert await run_verifications(insi_client, db_url) == ["refused"]
    assert patients(db_url)[0].birth_name == "ADRTROIS"  # RIS.INS.44: not updated
    with Session(db.get_engine(db_url)) as s:
        items = s.exec(select(WorklistItem)).all()
    assert [w.kind for w in items] == ["insi-verification-ko"] * 2  # rule 55, one per message
    assert [w.source for w in items] == [f"ADT^A28 {cid} from HOPY^CHU-X" for cid in ("1001", "1002")]


async def test_other_domain_doubtful_identity_never_calls_insi(db_url, insi_client, insi_sandbox) -> None:
    await PamIntake(IntakePolicy(), insi_client).handle(
        message(app="HOPY", pid=ADRTROIS, ipp="Y1", rel="DOUT")
    )
    assert insi_sandbox.received == [] and patients(db_url)[0].ins_matricule is None


async def test_mllp_listener_over_a_real_socket(db_url) -> None:
    async with PamIntake(OWN).listener() as server:
        ack = await mllp.exchange("127.0.0.1", server.port, message(), timeout=5)
        dup = await mllp.exchange("127.0.0.1", server.port, message(), timeout=5)
    assert msa(ack)[1] == msa(dup)[1] == "AA"
    assert len(patients(db_url)) == 1
    with Session(db.get_engine(db_url)) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "identity.pam")).all()


async def test_file_import(db_url, tmp_path: Path) -> None:
    path = tmp_path / "feed.hl7"
    path.write_text(
        message().replace("\r", "\n")
        + message(cid="1002", ipp="000009").replace("\r", "\n")
        + message(event="A99", cid="1003").replace("\r", "\n")
    )
    assert await PamIntake(OWN).import_file(path) == ["AA", "AA", "AR"]
    assert len(patients(db_url)) == 2


def test_settings_helper_is_shared(wsdl) -> None:
    assert settings_for("http://127.0.0.1:1/lps", wsdl).lps_name == "RIS-ENGINE"
