"""The sandbox PFI judges what it receives like a GESTIONNAIRE: AA, or AR with the table 0357 code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from ris.channels.hl7.message import Publication, render
from ris.hl7v2 import mllp
from ris.hl7v2.ack_reader import parse_ack
from ris.site.settings import SiteSettings
from sandbox.pfi import PfiSandbox
from tests import factories
from tests.hl7.conftest import as_planned, plan

CDA = b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id root='1.2.3'/></ClinicalDocument>"


def message(session: Session, *, control_id: str = "K1", **report_fields) -> str:
    bundle = factories.validated_report(session, copies=0, **report_fields)
    settings = SiteSettings()
    settings.hl7.matrix_check = "warn"
    return render(
        Publication(bundle, CDA, "initial", control_id, as_planned(plan(session, bundle))), settings
    ).er7


async def send(pfi: PfiSandbox, text: str):
    return parse_ack(await mllp.exchange("127.0.0.1", pfi.port, text, timeout=5))


def replace_line(text: str, startswith: str, new: str | None) -> str:
    lines = text.split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith(startswith))
    if new is None:
        del lines[at]
    else:
        lines[at] = new
    return "\r".join(lines)


async def test_valid_message_is_accepted_and_kept(session: Session, tmp_path: Path) -> None:
    async with PfiSandbox(folder=tmp_path / "pfi") as pfi:
        ack = await send(pfi, message(session, control_id="DOC-1"))
        assert (ack.code, ack.control_id) == ("AA", "DOC-1")
        assert list(pfi.documents) == ["DOC-1"]
        assert (tmp_path / "pfi" / "DOC-1.hl7").read_text(encoding="utf-8").startswith("MSH|")


@pytest.mark.parametrize(
    ("mutate", "code", "where"),
    [
        (lambda m: m.replace("MDM^T02^MDM_T02", "ADT^A01^ADT_A01"), "200", ""),
        (lambda m: m.replace("MDM^T02^MDM_T02", "MDM^T11^MDM_T02"), "201", ""),
        (lambda m: m.replace("|P|2.6|", "|P|2.5|", 1), "203", ""),
        (lambda m: m.replace("ORC|NW|", "ORC|RO|"), "207", "ORC^1^1"),
        (lambda m: m.replace("^text^XML^Base64^", "^text^XML^Base64^@@@", 1), "102", "OBX^1^5"),
        (lambda m: replace_line(m, "OBX|7|", None), "100", "OBX"),
        (lambda m: replace_line(m, "PRT||UC||SB", None), "101", "PRT^1^4"),
        (lambda m: m.replace("|19790328|", "|1979-03-28|"), "199", ""),
    ],
)
async def test_broken_messages_are_rejected_with_ar(session: Session, mutate, code: str, where: str) -> None:
    async with PfiSandbox() as pfi:
        ack = await send(pfi, mutate(message(session)))
        assert ack.code == "AR" and ack.errors[0].condition == code
        if where:
            assert ack.errors[0].location == where
        assert pfi.documents == {}


async def test_matrix_is_checked_unless_switched_off(session: Session) -> None:
    outside = message(session, mask_ps=True)  # IG Exemple 1
    async with PfiSandbox() as strict, PfiSandbox(matrix_check=False) as lenient:
        assert (await send(strict, outside)).code == "AR"
        assert (await send(lenient, outside)).code == "AA"


async def test_duplicate_control_id_is_acknowledged_but_kept_once(session: Session) -> None:
    text = message(session, control_id="SAME")
    async with PfiSandbox() as pfi:
        assert [(await send(pfi, text)).code for _ in range(3)] == ["AA", "AA", "AA"]
        assert len(pfi.documents) == 1 and pfi.duplicates == 2
        assert pfi.filed_twice == 0  # one copy for its recipients


async def test_the_same_content_under_a_new_control_id_is_counted_as_filed_twice(session: Session) -> None:
    text = message(session, control_id="FIRST")
    other = message(session, control_id="OTHER")  # another report: other recipients, not a duplicate
    async with PfiSandbox() as pfi:
        for sent in (text, text.replace("|FIRST|", "|AGAIN|", 1), other):
            assert (await send(pfi, sent)).code == "AA"
        assert len(pfi.documents) == 3 and pfi.duplicates == 0
        assert pfi.filed_twice == 1
        assert pfi.summary() == {
            "messages": 3,
            "documents": 3,
            "identity_messages": 0,
            "same_msh10_resent": 0,
            "filed_twice": 1,
        }


async def test_fault_switches(session: Session) -> None:
    async with PfiSandbox() as pfi:
        with pytest.raises(ValueError, match="fault 'boom'"):
            pfi.fail_next("boom")
        pfi.fail_next("AE", "AR", "silent")
        assert (await send(pfi, message(session, control_id="F1"))).code == "AE"
        assert (await send(pfi, message(session, control_id="F2"))).code == "AR"
        with pytest.raises(mllp.MllpTimeout):
            await mllp.exchange("127.0.0.1", pfi.port, message(session, control_id="F3"), timeout=0.3)
        assert (await send(pfi, message(session, control_id="F4"))).code == "AA"
        assert [r.answer for r in pfi.received] == ["AE", "AR", None, "AA"] and list(pfi.documents) == ["F4"]
