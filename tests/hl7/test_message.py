"""Our ORU / MDM messages against the ANS examples, segment by segment, hl7apy STRICT, and the CDA inside."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from ris.channels.hl7.message import Hl7RuleError, MatrixRefusal, Publication, render
from ris.channels.hl7.publish import load_cda
from ris.channels.hl7.validation import Hl7ValidationError, strict_validate
from ris.site.settings import SiteSettings
from ris.store.models import DeliveryStatus, IdentityStatus
from tests import factories
from tests.hl7.conftest import (
    MDM_DIR,
    ORU_DIR,
    as_planned,
    hl7_row,
    plan,
    read_example,
    replacement,
    with_documents,
)

# The values the volet fixes, per segment: (field, component); component 0 = the whole field.
FIXED: dict[str, list[tuple[int, int]]] = {
    "MSH": [(9, 0), (11, 0), (12, 0), (17, 0), (18, 0), (21, 0)],
    "EVN": [],
    "PID": [(5, 1), (5, 2), (5, 7), (7, 0), (8, 0), (31, 0), (32, 0)],
    "PV1": [(1, 0), (2, 0), (19, 5)],
    "ORC": [(1, 0)],
    "OBR": [(1, 0), (4, 0)],
    "TXA": [(1, 0), (2, 0), (3, 0), (17, 0)],
    "OBX": [(1, 0), (2, 0), (3, 0), (5, 1), (5, 2), (5, 3), (5, 4), (11, 0)],
    "PRT": [(2, 0), (4, 1), (4, 3), (5, 10), (5, 13), (8, 7), (15, 3)],
    "NTE": [(1, 0), (4, 0)],
}


class Seg:
    def __init__(self, line: str) -> None:
        self.parts = line.split("|")
        self.name = self.parts[0]

    def get(self, field: int, component: int = 0) -> str:
        index = field - 1 if self.name == "MSH" else field
        value = self.parts[index] if index < len(self.parts) else ""
        if component == 0:
            return value
        pieces = value.split("~")[0].split("^")
        return pieces[component - 1] if component <= len(pieces) else ""

    def repetition(self, field: int, marker: str) -> str:
        index = field - 1 if self.name == "MSH" else field
        value = self.parts[index] if index < len(self.parts) else ""
        return next((r for r in value.split("~") if marker in r), "")


def parse(er7: str) -> list[Seg]:
    return [Seg(line) for line in er7.split("\r") if line]


def without_mail_bodies(segments: list[Seg]) -> list[Seg]:
    # CORPSMAIL_PS / _PATIENT are optional and the site has no mail-body setting.
    return [s for s in segments if not (s.name == "OBX" and s.get(3, 1).startswith("CORPSMAIL"))]


def assert_same_shape(ours: list[Seg], theirs: list[Seg], *, skip: frozenset[tuple[str, int]] = frozenset()):
    assert [s.name for s in ours] == [s.name for s in theirs]
    for position, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        for field, component in FIXED[mine.name]:
            if (mine.name, field) in skip:
                continue
            assert mine.get(field, component) == ref.get(field, component), (
                f"segment {position} {mine.name}-{field}.{component}: "
                f"{mine.get(field, component)!r} != {ref.get(field, component)!r}"
            )
    # The INS and the birth place, where the examples put them.
    pid, ref_pid = next(s for s in ours if s.name == "PID"), next(s for s in theirs if s.name == "PID")
    ins, ref_ins = pid.repetition(3, "^INS").split("^"), ref_pid.repetition(3, "^INS").split("^")
    assert (ins[0], ins[3], ins[4]) == (ref_ins[0], ref_ins[3], ref_ins[4])  # matricule, authority, INS
    assert pid.repetition(11, "BDL").rstrip("^") == ref_pid.repetition(11, "BDL").rstrip("^")


def example_like_settings(kind: str, *, receipts: bool, reply: bool) -> SiteSettings:
    settings = SiteSettings()
    settings.hl7.message_type = kind
    settings.hl7.request_receipts = settings.hl7.request_read_receipts = receipts
    settings.hl7.matrix_check = "warn"  # several ANS examples sit outside the MSSanté matrix (§6)
    if not reply:
        settings.return_address = ""
    return settings


def cda_of(er7: str) -> bytes:
    document = next(s for s in parse(er7) if s.name == "OBX")
    return base64.b64decode(document.get(5, 5), validate=True)


def test_mdm_initial_matches_the_ans_example(session: Session, shared: Path) -> None:
    # ANS INIT: invisible to the patient (announcement pending) and to legal representatives, secret
    # connection, DMP and one professional.
    bundle = factories.validated_report(
        session, copies=0, announcement_required=True, invisible_legal_reps=True, secret_connection=True
    )
    bundle.exam.encounter_class = "I"
    rows = plan(session, bundle)
    settings = example_like_settings("MDM", receipts=False, reply=False)
    cda = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>"
    rendered = render(
        Publication(bundle, cda, "initial", hl7_row(rows).idempotency_key, as_planned(rows)), settings
    )
    theirs = without_mail_bodies(
        parse(read_example(shared, f"{MDM_DIR}/Transmission_initiale_MDM/message_MDM_CR_Radio_INIT_N1.er7"))
    )
    assert_same_shape(parse(rendered.er7), theirs)
    assert rendered.matrix_warning is not None  # INVISIBLE_REP_LEGAUX=Y with PS only: no matrix row
    strict_validate(rendered.er7)


def test_mdm_replacement_and_deletion_match_the_ans_examples(session: Session, shared: Path) -> None:
    bundle = factories.validated_report(session, copies=0, secret_connection=True, refuse_mss_patient=True)
    bundle.exam.encounter_class = "I"
    session.add(bundle.exam)
    v2 = replacement(session, bundle)
    rows = plan(session, v2, action="replace")
    settings = example_like_settings("MDM", receipts=False, reply=False)
    cda = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>"
    pub = Publication(
        v2, cda, "replace", hl7_row(rows).idempotency_key, as_planned(rows), modif_conf_code=True
    )
    replaced = render(pub, settings)
    ref = parse(read_example(shared, f"{MDM_DIR}/Remplacement_MDM/message_MDM_CR_Radio_RPLC_N1.er7"))
    assert_same_shape(parse(replaced.er7), without_mail_bodies(ref))
    txa = next(s for s in parse(replaced.er7) if s.name == "TXA")
    assert (txa.get(12), txa.get(13)) == (v2.version.document_id, bundle.version.document_id)
    strict_validate(replaced.er7)

    # Deletion of v2 goes wherever v2 went (here: DMP and the professional), with its own MSH-10.
    for row in rows:
        row.status = DeliveryStatus.acknowledged if row.status is DeliveryStatus.pending else row.status
    deletion = plan(session, v2, action="delete", hl7_recipient="pfi:delete")
    reached = [p for p in as_planned(rows) if p.status is DeliveryStatus.acknowledged]
    going = [p.__class__(p.channel, p.recipient, DeliveryStatus.pending, None, p.route) for p in reached]
    deleted = render(Publication(v2, cda, "delete", hl7_row(deletion).idempotency_key, going), settings)
    ref = parse(read_example(shared, f"{MDM_DIR}/Suppression_MDM/message_MDM_CR_Radio_DEL_N1.er7"))
    assert_same_shape(parse(deleted.er7), without_mail_bodies(ref))
    strict_validate(deleted.er7)


@pytest.mark.slow  # cda_validate.py -p all takes a few seconds
def test_oru_initial_matches_the_ans_example_and_carries_our_valid_cda(
    session: Session, shared: Path, tmp_path: Path
) -> None:
    # ANS ORU N3 SEGUR: no restriction, DMP, one professional, the patient, a reply address, receipts.
    bundle = factories.validated_report(session, copies=0)
    bundle.exam.encounter_class = "I"
    with_documents(session, bundle)
    rows = plan(session, bundle)
    settings = example_like_settings("ORU", receipts=True, reply=True)
    cda = load_cda(session, bundle.report.id, 1)
    rendered = render(
        Publication(bundle, cda, "initial", hl7_row(rows).idempotency_key, as_planned(rows)), settings
    )
    ours = parse(rendered.er7)
    theirs = without_mail_bodies(
        parse(
            read_example(shared, f"{ORU_DIR}/Transmission_initiale_ORU/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7")
        )
    )
    # The volet asks for NTE FIN right after DESTMSSANTEPAT=Y; this (older) example lacks it.
    at = next(i for i, s in enumerate(theirs) if s.get(3, 1) == "DESTMSSANTEPAT") + 1
    theirs.insert(at, Seg("NTE|1|||FIN"))
    # The example is a biology report (11502-2): document type and ORU order details differ by nature.
    assert_same_shape(ours, theirs, skip=frozenset({("OBR", 4), ("OBX", 3), ("PRT", 15)}))
    assert next(s for s in ours if s.name == "OBR").get(4) == "18748-4^CR d'imagerie médicale^LN"
    strict_validate(rendered.er7)

    extracted = cda_of(rendered.er7)
    assert extracted == cda
    path = tmp_path / "from_obx5.xml"
    path.write_bytes(extracted)
    result = subprocess.run(
        [sys.executable, str(shared / "tools" / "cda_validate.py"), "-p", "all", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_unqualified_identity_sends_no_ins_and_no_patient_mailbox(session: Session, mdm_settings) -> None:
    bundle = factories.validated_report(session, qualified=False, copies=0)
    rows = plan(session, bundle)
    rendered = render(Publication(bundle, b"<x/>", "initial", "K1", as_planned(rows)), mdm_settings)
    pid = next(s for s in parse(rendered.er7) if s.name == "PID")
    assert "^INS" not in pid.get(3) and pid.get(3).endswith("^PI")
    assert pid.get(32) == "PROV"
    assert "@patient.mssante.fr" not in rendered.er7 and not rendered.ins_included
    flags = {s.get(3, 1): s.get(5, 1) for s in parse(rendered.er7) if s.name == "OBX" and s.get(1) != "1"}
    assert (flags["DESTDMP"], flags["DESTMSSANTEPS"], flags["DESTMSSANTEPAT"]) == ("N", "Y", "N")


def test_recovered_identity_is_sent_without_its_ins(session: Session, mdm_settings) -> None:
    bundle = factories.validated_report(session, copies=0)
    bundle.patient.status = IdentityStatus.RECUP
    rows = plan(session, bundle)
    rendered = render(Publication(bundle, b"<x/>", "initial", "K1", as_planned(rows)), mdm_settings)
    assert "279035121518989" not in rendered.er7


def test_flags_outside_the_matrix_are_refused_before_sending(session: Session, mdm_settings) -> None:
    # RIS.INTRA.01 proof message 2 (IG Exemple 1): masked to PS, DMP and patient: no matrix row, and here
    # no combination agreed with the PFI either.
    bundle = factories.validated_report(session, mask_ps=True)
    rows = plan(session, bundle)
    mdm_settings.hl7.matrix_check = "reject"
    mdm_settings.hl7.agreed_combinations = []
    with pytest.raises(MatrixRefusal, match=r"MASQUE_PS=Y .* DESTDMP=Y DESTMSSANTEPS=N DESTMSSANTEPAT=Y"):
        render(Publication(bundle, b"<x/>", "initial", "K1", as_planned(rows)), mdm_settings)
    mdm_settings.hl7.matrix_check = "warn"
    rendered = render(Publication(bundle, b"<x/>", "initial", "K1", as_planned(rows)), mdm_settings)
    assert "RCT^^participation|8" not in rendered.er7  # masked to professionals: no PS recipient
    assert rendered.matrix_warning and "PAT-TROIS" not in rendered.matrix_warning


def test_default_scenario_is_matrix_row_one(session: Session, mdm_settings) -> None:
    bundle = factories.validated_report(session, copies=2)
    rows = plan(session, bundle)
    mdm_settings.hl7.matrix_check = "reject"
    rendered = render(Publication(bundle, b"<x/>", "initial", "K1", as_planned(rows)), mdm_settings)
    assert rendered.matrix_warning is None
    segments = parse(rendered.er7)
    roles = [s.get(4, 1) for s in segments if s.name == "PRT"]
    assert roles == ["SB", "RCT", "RCT", "RCT", "RCT", "REPLY"]  # requester, 2 copies, patient
    codes = [s.get(3, 1) for s in segments if s.name == "OBX"][1:]
    assert codes[:8] == [
        "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REP_LEGAUX", "CONNEXION_SECRETE",
        "MODIF_CONF_CODE", "DESTDMP", "DESTMSSANTEPS", "DESTMSSANTEPAT",
    ]  # fmt: skip
    names = [s.name for s in segments]
    assert (
        names[names.index("NTE") - 1] == "OBX"
        and segments[names.index("NTE") - 1].get(3, 1) == "DESTMSSANTEPAT"
    )


def test_actions_drive_orc_obx_and_trigger(session: Session, mdm_settings, oru_settings) -> None:
    bundle = factories.validated_report(session, copies=0)
    v2 = replacement(session, bundle)
    for settings in (mdm_settings, oru_settings):
        for action, trigger, orc, obx in (
            ("initial", "T02", "NW", "F"),
            ("replace", "T10", "RO", "C"),
            ("delete", "T04", "CA", "D"),
        ):
            segments = parse(render(Publication(v2, b"<x/>", action, "K", []), settings).er7)
            kind = settings.hl7.message_type
            expected = f"MDM^{trigger}^MDM_T02" if kind == "MDM" else "ORU^R01^ORU_R01"
            assert segments[0].get(9) == expected
            assert next(s for s in segments if s.name == "ORC").get(1) == orc
            assert next(s for s in segments if s.name == "OBX").get(11) == obx


def test_bad_input_names_the_field_and_rule(session: Session, mdm_settings) -> None:
    bundle = factories.validated_report(session, copies=0)
    with pytest.raises(Hl7RuleError, match="a replacement needs a previous version"):
        render(Publication(bundle, b"<x/>", "replace", "K", []), mdm_settings)
    with pytest.raises(Hl7RuleError, match="action 'erase'"):
        render(Publication(bundle, b"<x/>", "erase", "K", []), mdm_settings)  # type: ignore[arg-type]
    with pytest.raises(Hl7RuleError, match="CDA to carry in OBX-5 is empty"):
        render(Publication(bundle, b"", "initial", "K", []), mdm_settings)


def test_free_text_is_escaped(session: Session, mdm_settings) -> None:
    bundle = factories.validated_report(session, copies=0)
    bundle.patient.birth_name = "O|BRIEN^&CO"
    rendered = render(Publication(bundle, b"<x/>", "initial", "K", []), mdm_settings)
    pid = next(s for s in parse(rendered.er7) if s.name == "PID")
    assert pid.get(5, 1) == r"O\F\BRIEN\S\\T\CO"
    strict_validate(rendered.er7)


def test_strict_validation_reports_a_broken_message() -> None:
    with pytest.raises(Hl7ValidationError):
        strict_validate("MSH|^~\\&|A|B|C|D|20240101||MDM^T02^MDM_T02|1|P|2.6\rPID|||x||y||1970-01-01")
