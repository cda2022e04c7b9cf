"""RIS.INS.55-57: every inbound HL7 v2 message carrying a PID is integrated, over a real MLLP connection to
the listener the engine runs (PamIntake.listener, as `ris up` and `ris identity listen` start it).

Messages are built to their HL7 v2.5 structures (PAM-FR 2.11 for ADT, ins.md §8; ORM / OMI / SIU with the
PID of the CI-SIS INS annex) and proven with hl7apy STRICT before they are sent; so are our answers.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from hl7apy.validation import Validator
from sqlmodel import Session, select

from ris.hl7v2 import mllp
from ris.hl7v2.mllp import MllpServer
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from ris.store.models import AuditEntry, IdentityStatus, InboundMessage, OutboundMessage, Patient
from tests.identity.helpers import run_verifications

PAM_MSH = (
    "MSH|^~\\&|{app}|CHU-X|RIS|CIM|20240306111154||{type}|{cid}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||"
    "2.11^IHE_FRANCE-2.11-PAM"
)
ORDER_MSH = "MSH|^~\\&|{app}|CHU-X|RIS|CIM|20240306111154||{type}|{cid}|P|{version}|||||FRA|UNICODE UTF-8"
# ins.md §8.2 (ANS example): IPP + test INS in PID-3, birth and used names, BDL birth place, PID-32 VALI.
PID = (
    "PID|1||{ipp}^^^CHU-X&1.2.250.1.71.4.2.7&ISO^PI~279035121518989^^^ASIP-SANTE-INS-NIR&"
    "1.2.250.1.213.1.4.10&ISO^INS^^20101207||PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L~{used}^DOMI^^^^^D||19790328|"
    "F|||28 Av de Breteuil^^PARIS^^75007^FRA^H~^^^^^^BDL^^63220" + "|" * 19 + "N||VALI|20240306111153"
)  # PID-30 N (not deceased), PID-32 VALI, PID-33 last update
IPP = "000003"
TEST_INS = "279035121518989"
EVN = "EVN||20240306111154"
OWN = IntakePolicy(own_domain=frozenset({"GAM", "DPI"}))

# PAM-FR 2.11 events (French national extension, ITI-30 / ITI-31) -> HL7 v2.5 message structure.
STRUCTURES = {
    **dict.fromkeys(("A01", "A04", "A08", "A13", *(f"Z{n}" for n in range(80, 90)), "Z99"), "ADT_A01"),
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    **dict.fromkeys(("A05", "A14", "A28", "A31"), "ADT_A05"),
    **dict.fromkeys(("A06", "A07"), "ADT_A06"),
    **dict.fromkeys(("A09", "A10", "A11"), "ADT_A09"),
    "A12": "ADT_A12",
    "A15": "ADT_A15",
    "A16": "ADT_A16",
    **dict.fromkeys(("A21", "A22", "A25", "A26", "A27", "A32", "A33"), "ADT_A21"),
    "A38": "ADT_A38",
    "A40": "ADT_A39",
    "A44": "ADT_A43",
    **dict.fromkeys(("A47", "A49"), "ADT_A30"),
    **dict.fromkeys(("A52", "A53", "A55"), "ADT_A52"),
    "A54": "ADT_A54",
}
# Cancellations name the movement they cancel in ZBE-6 (PAM-FR), with ZBE-4 = CANCEL.
CANCELS = {
    "A11": "A01",
    "A12": "A02",
    "A13": "A03",
    "A25": "A16",
    "A26": "A15",
    "A27": "A14",
    "A32": "A10",
    "A33": "A09",
    "A38": "A05",
    "A52": "A21",
    "A53": "A22",
    "A55": "A54",
}
IDENTITY_ONLY = {"A28", "A31", "A08"}  # ITI-30 (and legacy A08): PV1-2 N, no movement
WITH_MRG = {"A40", "A44", "A47", "A49"}  # structures without a visit: PID + MRG


def pid(ipp: str = IPP, used: str = "MARTIN") -> str:
    return PID.format(ipp=ipp, used=used)


def pam(event: str, cid: str, *, ipp: str = IPP, used: str = "MARTIN", prior: str = IPP) -> str:
    segments = [
        PAM_MSH.format(app="GAM", type=f"ADT^{event}^{STRUCTURES[event]}", cid=cid),
        EVN,
        pid(ipp, used),
    ]
    if event in WITH_MRG:
        segments.append(f"MRG|{prior}^^^CHU-X&1.2.250.1.71.4.2.7&ISO^PI")
    elif event in IDENTITY_ONLY:
        segments.append("PV1|1|N")
    else:
        visit = "VN-1^^^CHU-X&1.2.250.1.71.4.2.7&ISO^VN"
        segments.append("PV1|1|I|RADIO^^^CHU-X" + "|" * 16 + visit)  # PV1-19 visit number
        action, original = ("CANCEL", CANCELS[event]) if event in CANCELS else ("INSERT", "")
        if event == "Z99":
            action, original = "UPDATE", "A01"
        segments.append(f"ZBE|MVT-{cid}^GAM|20240306111154||{action}|N|{original}")
    return checked("\r".join(segments) + "\r")


def order(kind: str, cid: str, *, app: str = "DPI", pid_segment: str | None = None) -> str:
    """ORM^O01 (v2.5), OMI^O23 (v2.5.1, IHE Radiology) and SIU^S12-S15 (v2.5), each with the annex PID."""
    # pid_segment "": no PATIENT group at all (optional in ORM / OMI / SIU)
    patient = [] if pid_segment == "" else [pid_segment or pid(used="DURAND"), "PV1|1|O"]
    msh, body = {
        "ORM^O01": (
            ("ORM^O01^ORM_O01", "2.5"),
            [
                *patient,
                "ORC|NW|CMD-1^DPI|||||^^^20240306120000",
                "OBR|1|CMD-1^DPI||ZBQK002^Radio thorax^CCAM",
            ],
        ),
        "OMI^O23": (
            ("OMI^O23^OMI_O23", "2.5.1"),
            [
                *patient,
                "ORC|NW|CMD-1^DPI",
                "TQ1|1||||||20240306120000",
                "OBR|1|CMD-1^DPI||ZBQK002^Radio thorax^CCAM",
                "IPC|ACC-1|RP-1|1.2.250.1.999.1|SPS-1|CR",
            ],
        ),
    }.get(kind) or (
        (f"{kind}^SIU_S12", "2.5"),
        [
            "SCH|RDV-1^DPI|RDV-1^RIS||||NEW^Nouveau|ROUTINE^Routine^HL70276||||^^^20240306120000|||||"
            "ACCUEIL^RADIO||||ACCUEIL^RADIO|||||BOOKED",
            "TQ1|1||||||20240306120000",
            *patient,
            "RGS|1|A",
            "AIS|1|A|ZBQK002^Radio thorax^CCAM|20240306120000",
        ],
    )
    header = ORDER_MSH.format(app=app, type=msh[0], cid=cid, version=msh[1])
    return checked("\r".join([header, *body]) + "\r")


def structure_errors(er7: str) -> list[str]:
    """hl7apy STRICT errors of the message against its MSH-9.3 structure. hl7apy models the ORM_O01 choice
    <OBR | RQD | RQ1 | RXO | ODS | ODT> as a sequence: the alternatives of a present OBR are not errors."""
    message = parse_message(er7.strip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        with contextlib.suppress(Exception):  # the report holds every error; the first one is raised
            Validator.validate(message, report_file=report.name)
        lines = [line for line in report.read().splitlines() if line.startswith("Error")]
    choice = "Missing required child ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP."
    return [e for e in lines if not (choice in e and "\rOBR|" in er7 and not e.endswith(".OBR"))]


def checked(er7: str) -> str:
    assert structure_errors(er7) == [], er7
    return er7


def ack_parts(ack: str) -> tuple[str, list[str], list[str]]:
    """(MSH-9, MSA fields, ERR fields) of an answer proven valid HL7 at STRICT."""
    assert parse_message(
        ack.strip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
    ).validate()
    segments = {s[:3]: s.split("|") for s in ack.strip("\r").split("\r")}
    return segments["MSH"][8], segments["MSA"], segments.get("ERR", [])


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[MllpServer]:
    async with PamIntake(OWN, database_url=db_url).listener() as server:
        yield server


async def send(server: MllpServer, er7: str) -> str:
    return await mllp.exchange("127.0.0.1", server.port, er7, timeout=10)


def rows(db_url: str, model, *where) -> list:
    with Session(db.get_engine(db_url)) as s:
        return list(s.exec(select(model).where(*where).order_by(model.id)).all())


def patient(db_url: str, ipp: str = IPP) -> Patient:
    [p] = rows(db_url, Patient, Patient.ipp == ipp)
    return p


def pam_audits(db_url: str, cid: str) -> list[AuditEntry]:
    return [
        a
        for a in rows(db_url, AuditEntry, AuditEntry.action == "identity.pam")
        if a.detail["control_id"] == cid
    ]


@pytest.mark.parametrize("event", sorted(STRUCTURES))
async def test_every_pam_fr_event_is_acknowledged_and_its_pid_integrated(
    db_url: str, listener: MllpServer, event: str
) -> None:
    """Admission accepted, then each event of the French extension (the issue: an A03 discharge got AR)."""
    assert ack_parts(await send(listener, pam("A28", "ADM-1")))[1][1] == "AA"
    prior = IPP
    if event == "A40":  # a merge absorbs a second known patient
        prior = "000099"
        await send(listener, pam("A28", "ADM-2", ipp=prior))
    message = pam(event, f"EVT-{event}", used="DURAND", prior=prior)

    msh9, msa, err = ack_parts(await send(listener, message))

    assert (msh9, msa[1:3], err) == (f"ACK^{event}^ACK", ["AA", f"EVT-{event}"], [])
    p = patient(db_url)
    assert (p.used_name, p.status, p.ins_matricule) == ("DURAND", IdentityStatus.QUAL, TEST_INS)
    [audit] = pam_audits(db_url, f"EVT-{event}")
    assert audit.object_id == str(p.id)
    assert (audit.detail["message_type"], audit.detail["sender"]) == (f"ADT^{event}", "GAM^CHU-X")
    [row] = rows(db_url, InboundMessage, InboundMessage.control_id == f"EVT-{event}")
    assert (row.outcome, row.message_type, row.raw) == ("accepted", f"ADT^{event}", message)

    # The same MSH-10 again, even with other content: same answer, nothing re-applied.
    again = message.replace("DURAND^DOMI", "AUTRE^DOMI")
    assert ack_parts(await send(listener, again))[:2] == (msh9, msa)
    assert patient(db_url).used_name == "DURAND"
    assert len(pam_audits(db_url, f"EVT-{event}")) == 1
    assert len(rows(db_url, InboundMessage, InboundMessage.control_id == f"EVT-{event}")) == 1


@pytest.mark.parametrize(
    ("kind", "ack_type"),
    [
        ("ORM^O01", "ORR^O02^ORR_O02"),
        ("OMI^O23", "ORI^O24^ORI_O24"),
        ("SIU^S12", "ACK^S12^ACK"),
        ("SIU^S13", "ACK^S13^ACK"),
        ("SIU^S14", "ACK^S14^ACK"),
        ("SIU^S15", "ACK^S15^ACK"),
    ],
)
async def test_orders_and_appointments_integrate_their_pid(
    db_url: str, listener: MllpServer, kind: str, ack_type: str
) -> None:
    message = order(kind, "ORD-1")

    msh9, msa, err = ack_parts(await send(listener, message))

    assert (msh9, msa[1:3], err) == (ack_type, ["AA", "ORD-1"], [])
    p = patient(db_url)  # an unknown patient, created from the annex PID: INS + VALI from our domain
    assert (p.status, p.ins_matricule, p.used_name, p.birth_place_code) == (
        IdentityStatus.QUAL,
        TEST_INS,
        "DURAND",
        "63220",
    )
    [audit] = pam_audits(db_url, "ORD-1")
    assert audit.detail["message_type"] == kind
    assert ack_parts(await send(listener, message.replace("DURAND^DOMI", "AUTRE^DOMI")))[:2] == (msh9, msa)
    assert patient(db_url).used_name == "DURAND" and len(pam_audits(db_url, "ORD-1")) == 1


async def test_an_appointment_without_patient_segment_is_accepted_and_stores_nothing(
    db_url: str, listener: MllpServer
) -> None:
    msh9, msa, _ = ack_parts(await send(listener, order("SIU^S12", "RDV-9", pid_segment="")))
    assert (msh9, msa[1]) == ("ACK^S12^ACK", "AA")
    assert rows(db_url, Patient) == []
    assert [r.outcome for r in rows(db_url, InboundMessage)] == ["accepted"]


@pytest.mark.parametrize(
    ("mutate", "code", "where"),
    [
        (lambda m: m.replace("ORM^O01^ORM_O01", "MFN^M02^MFN_M02"), "200", "MSH^1^9"),
        (lambda m: m.replace("ORM^O01^ORM_O01", "ORM^O02^ORM_O01"), "201", "MSH^1^9"),
        (lambda m: m.replace("|P|2.5|", "|P|2.3.1|"), "203", "MSH^1^12"),
    ],
)
async def test_what_cannot_be_read_gets_ar(
    db_url: str, listener: MllpServer, mutate, code: str, where: str
) -> None:
    _, msa, err = ack_parts(await send(listener, mutate(order("ORM^O01", "BAD-1"))))
    assert msa[1:3] == ["AR", "BAD-1"]
    assert (err[2], err[3].split("^")[0]) == (where, code)
    assert rows(db_url, Patient) == [] and [r.outcome for r in rows(db_url, InboundMessage)] == ["rejected"]


async def test_a_pid_breaking_an_ins_rule_gets_ae_in_the_order_acknowledgement(
    db_url: str, listener: MllpServer
) -> None:
    bad_key = pid().replace(TEST_INS, "279035121518988")  # NIR key does not match (INS rule)
    msh9, msa, err = ack_parts(await send(listener, order("ORM^O01", "BAD-2", pid_segment=bad_key)))
    assert (msh9, msa[1:3]) == ("ORR^O02^ORR_O02", ["AE", "BAD-2"])
    assert err[2] == "PID^1^3^1^1" and err[3].startswith("103^") and "INS" in err[8]
    assert rows(db_url, Patient) == []
    [row] = rows(db_url, InboundMessage)
    assert row.outcome == "rejected" and "PID-3.1" in row.error


async def test_a_change_from_another_domain_propagates_and_names_its_message(
    db_url: str, insi_client
) -> None:
    """Rule 27: a known identity changed by another domain's message goes to the outbox (A31; no A47, the
    RECUP INS never left, rule 28); the audit trail names the message that brought the change."""
    adrtrois = (
        "PID|1||Y1^^^HOP-Y&1.2.250.1.999.2&ISO^PI~297022A02077878^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8"
        "&ISO^INS||ADRTROIS^DOMINIQUE^DOMINIQUE^^^^L~{used}^DOMI^^^^^D||19970226|F|||^^^^^^BDL^^2A020"
        + "|" * 21
        + "VALI"
    )  # PID-32
    async with PamIntake(IntakePolicy(), database_url=db_url).listener() as server:
        first = order("SIU^S12", "HOPY-1", app="HOPY", pid_segment=adrtrois.format(used="MARTIN"))
        second = order("SIU^S14", "HOPY-2", app="HOPY", pid_segment=adrtrois.format(used="DURAND"))
        assert ack_parts(await send(server, first))[1][1] == "AA"
        assert await run_verifications(insi_client, db_url) == ["verified"]  # the INS: RECUP
        assert rows(db_url, OutboundMessage) == []  # a creation has no outbound PAM-FR event here
        assert ack_parts(await send(server, second))[1][1] == "AA"
    p = patient(db_url, "Y1")
    assert (p.status, p.used_name) == (IdentityStatus.RECUP, "DURAND")
    assert [r.message_type for r in rows(db_url, OutboundMessage)] == ["ADT^A31^ADT_A05"]
    *_, edit = rows(db_url, AuditEntry, AuditEntry.action == "identity.edit")
    assert edit.detail["message"] == "SIU^S14 HOPY-2 from HOPY^CHU-X"
    assert edit.detail["fields"]["used_name"] == ["MARTIN", "DURAND"]
