"""The INSi client reads every answer the CNAM test cases show, element order as sent, and turns one it
cannot read into one line with the call traced, never a traceback (issue 24; the DOCTYPE of issue 22).
Real sockets: the INSi sandbox answers each form; the reference answers are CNAM's own files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.identity import app
from ris.identity import insi_service
from ris.identity.insi_client import InsiClient, InsiUnavailable, TraitsQuery, read_answer
from ris.identity.insi_result import InsiUnreadable
from ris.site.insi_verification import VerificationContract
from ris.store.models import InsiExchange
from sandbox.insi import InsiSandbox
from tests.identity.conftest import settings_for
from tests.identity.helpers import CLERK

ADRTROIS = TraitsQuery("ADRTROIS", ("DOMINIQUE",), "F", dt.date(1997, 2, 26))


def _exchanges(session) -> list[InsiExchange]:
    return list(session.exec(select(InsiExchange).order_by(InsiExchange.id)).all())


@pytest.mark.parametrize(
    ("name", "code", "matricule", "oid"),
    [
        ("REP_CR01.xml", "01", None, None),
        ("DERIVED_response_CR00_ADRTROIS.xml", "00", "297022A02077878", "1.2.250.1.213.1.4.8"),
    ],
)
def test_cnam_reference_answers_are_read_as_sent(shared: Path, name, code, matricule, oid) -> None:
    content = (shared / "reference/insi/examples" / name).read_bytes()
    result, error = read_answer(200, content)
    assert error is None and result.code == code
    if matricule:
        assert (result.identity.ins.matricule, result.identity.ins.oid) == (matricule, oid)
        assert result.identity.birth_place_code == "2A020"  # Corsica, as INSi writes it


async def test_a_nia_is_read_with_its_own_oid(session, insi_client) -> None:
    """CNDA test 2.05: a NIA cannot be told from a NIR by its digits; its OID says it."""
    query = TraitsQuery("PROVISOIRE", ("MATRICULE",), "M", dt.date(2009, 7, 1))
    result = await insi_service.search(session, CLERK, insi_client, traits=query)
    assert (result.identity.ins.matricule, result.identity.ins.oid) == (
        "109076322088835",
        "1.2.250.1.213.1.4.9",
    )


@pytest.mark.parametrize(
    ("form", "error", "line"),
    [
        ("doctype", InsiUnavailable, "INSi unavailable: its answer carries a DOCTYPE"),
        ("not-soap", InsiUnreadable, "INSi answer unreadable: not XML"),
        ("no-resultat", InsiUnreadable, "INSi answer unreadable: no RESULTAT in the SOAP Body"),
    ],
)
async def test_an_answer_the_client_cannot_use_is_one_line_and_traced(
    session, insi_client, insi_sandbox, form, error, line
) -> None:
    insi_sandbox.broken = form
    with pytest.raises(error, match=line):
        await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS)
    [row] = _exchanges(session)
    assert line in row.fault and row.response["xml"] and row.code_cr is None  # the call and its answer


async def test_a_verification_code_outside_the_sites_contract_is_unreadable(
    session, insi_sandbox, wsdl
) -> None:
    contract = VerificationContract(ok_codes=["OK"], ko_codes=["KO"])  # not what this INSi answers
    async with InsiClient(settings_for(insi_sandbox.url, wsdl, verification=contract)) as client:
        call = await client.verify("297022A02077878", "1.2.250.1.213.1.4.8", ADRTROIS)
    assert isinstance(call.error, InsiUnreadable) and "CR/CodeCR '00' is not a code" in str(call.error)


def test_the_cli_says_an_unusable_answer_in_one_line(wsdl: Path, db_url, acting_users) -> None:
    with InsiSandbox(port=0, wsdl=wsdl) as sandbox:
        sandbox.broken = "doctype"
        traits = ["--name", "ADRTROIS", "--given", "DOMINIQUE", "--sex", "F", "--birth-date", "1997-02-26"]
        args = ["insi-lookup", "--by", "10001234567", "--url", sandbox.url, "--wsdl", str(wsdl), *traits]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # fail(), no traceback
    assert result.stderr.startswith("error: INSi unavailable: its answer carries a DOCTYPE")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
