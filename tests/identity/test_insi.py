"""INSi client against the sandbox over real sockets (ins.md §7; rules 4, 11, 12, 25, 37-39, 48-50)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlmodel import select

from ris.identity import insi_service
from ris.identity.actors import Actor
from ris.identity.errors import IdentityRuleError, PermissionDenied
from ris.identity.insi_client import InsiClient, InsiFault, InsiUnavailable, TraitsQuery, VitaleQuery
from ris.identity.insi_result import InsiResponseRefused, Outcome
from ris.identity.nir import nature
from ris.identity.registry import apply_insi_identity, record_justificatif, set_attributes, validate_identity
from ris.site.justificatifs import JustificatifPolicy
from ris.store.models import AuditEntry, IdentityStatus, InsiExchange, WorklistItem
from tests.identity.conftest import settings_for
from tests.identity.helpers import CLERK, adrtrois

ADRTROIS = TraitsQuery("ADRTROIS", ("DOMINIQUE",), "F", dt.date(1997, 2, 26))


def exchanges(session) -> list[InsiExchange]:
    return list(session.exec(select(InsiExchange).order_by(InsiExchange.id)).all())


async def test_cr00_found_then_accepted_gives_qualified(session, insi_client, insi_sandbox) -> None:
    p = adrtrois(session)
    record_justificatif(session, CLERK, p, "PASSPORT", JustificatifPolicy())
    validate_identity(session, CLERK, p)
    result = await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS, patient=p)
    assert result.outcome is Outcome.found and "compare" in result.advice
    apply_insi_identity(session, CLERK, p, result.identity)
    assert p.status is IdentityStatus.QUAL and p.ins_matricule == "297022A02077878"
    [row] = exchanges(session)
    assert (row.operation, row.code_cr, row.by, row.patient_id) == (
        "rechercherInsAvecTraitsIdentite",
        "00",
        "clerk-1",
        p.id,
    )
    assert "<NumIdentifiant>297022A020778</NumIdentifiant>" in row.response["xml"]  # full answer (rule 39)
    assert row.request["NomNaissance"] == "ADRTROIS" and row.request["auth"] == "org"
    call = insi_sandbox.received[0]
    assert call["idam"] == "RIS-IDAM-TEST" and call["lps_name"] == "urn:lps:RIS-ENGINE:0.1.0"
    assert call["message_id"] == row.request["message_id"]


async def test_answers_are_valid_against_the_resultat_xsd(session, insi_client, wsdl: Path) -> None:
    schema = etree.XMLSchema(
        etree.parse(str(wsdl.parent / "xsd/ServiceIdentiteCertifiee/INSi_RESULTAT_INS.xsd"))
    )
    await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS)
    xml = etree.fromstring(exchanges(session)[0].response["xml"].encode())
    assert schema.validate(etree.ElementTree(xml.find(".//{http://www.cnamts.fr/INSiResultat}RESULTAT")))


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        (TraitsQuery("DE VINCI", ("LEONARDO",), "M", dt.date(2014, 2, 1)), Outcome.several),
        (TraitsQuery("DE VINCI", ("LEONARDO",), "M", dt.date(2014, 2, 1), "75056"), Outcome.found),
        (TraitsQuery("HOUILLES", ("PIERRE",), "M", dt.date(1993, 1, 27)), Outcome.not_found),
        (TraitsQuery("TCHITCHI", ("OLA",), "F", dt.date(1936, 6, 21)), Outcome.not_found),
        (TraitsQuery("TCHITCHI", ("CATARINA",), "F", dt.date(1936, 6, 21)), Outcome.found),
        (TraitsQuery("ECETINSI", ("MURIEL",), "M", dt.date(2009, 7, 14)), Outcome.found),
        (TraitsQuery("ADRTROIS", ("TOUSSAINT",), "M", dt.date(1960, 1, 1)), Outcome.found),
    ],
)
async def test_return_codes_are_told_in_user_terms(session, insi_client, query, outcome) -> None:
    result = await insi_service.search(session, CLERK, insi_client, traits=query)
    assert result.outcome is outcome and result.advice
    assert exchanges(session)[0].code_cr == {"found": "00", "not_found": "01", "several": "02"}[outcome.value]


async def test_history_and_nia_are_kept(session, insi_client) -> None:
    ece = await insi_service.search(
        session,
        CLERK,
        insi_client,
        traits=TraitsQuery("ECETINSI", ("PIERRE-ALAIN",), "M", dt.date(2009, 7, 14)),
    )
    # CNDA test 2.04 as CNAM answers it: DateDeb / DateFin before IdIndividu (our XSD has them after OID).
    assert [(h.matricule, h.start, h.end) for h in ece.identity.history] == [
        ("209076322083439", "2019-03-01", "2019-02-28"),
        ("209066322012355", None, None),
    ]
    assert (
        "<DateDeb>2019-03-01</DateDeb><DateFin>2019-02-28</DateFin><IdIndividu>"
        in (exchanges(session)[0].response["xml"])
    )  # rule 39: the answer kept as it came
    assert exchanges(session)[0].response["result"]["identity"]["history"][0]["start"] == "2019-03-01"
    nia = await insi_service.search(
        session,
        CLERK,
        insi_client,
        traits=TraitsQuery("PROVISOIRE", ("MATRICULE",), "M", dt.date(2009, 7, 1)),
    )
    assert nature(nia.identity.ins.oid) == "NIA"


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        (TraitsQuery("LUNAIRE", ("LUNA",), "F", dt.date(1950, 1, 1)), "INS rule 11"),
        (TraitsQuery("SANSNOM", ("ANONYME",), "M", dt.date(1990, 5, 5)), "INS rule 12"),
    ],
)
async def test_answers_breaking_rules_11_and_12_are_refused_but_traced(
    session, insi_client, query, rule
) -> None:
    with pytest.raises(InsiResponseRefused) as err:
        await insi_service.search(session, CLERK, insi_client, traits=query)
    assert rule in str(err.value)
    [row] = exchanges(session)
    assert row.code_cr is None and rule in row.fault and row.response["xml"]


async def test_search_by_carte_vitale(session, insi_client) -> None:
    result = await insi_service.search(
        session, CLERK, insi_client, vitale=VitaleQuery("297022A020778", "78", "1997-02-26", "ADRTROIS")
    )
    assert result.identity.ins.matricule == "297022A02077878"
    assert exchanges(session)[0].operation == "rechercherInsAvecCarteVitale"


async def test_doubtful_identity_never_calls_insi(session, insi_client, insi_sandbox) -> None:
    p = adrtrois(session)
    set_attributes(session, CLERK, p, ["douteuse"])
    with pytest.raises(IdentityRuleError, match="INS rule 25"):
        await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS, patient=p)
    assert insi_sandbox.received == [] and exchanges(session) == []


async def test_calling_insi_needs_the_permission(session, insi_client, insi_sandbox) -> None:
    with pytest.raises(PermissionDenied, match=r"insi\.call"):
        await insi_service.search(session, Actor("clerk-2", frozenset()), insi_client, traits=ADRTROIS)
    assert insi_sandbox.received == []


async def test_queries_follow_the_lexical_profile(session, insi_client, insi_sandbox) -> None:
    with pytest.raises(IdentityRuleError, match="birth_name"):
        await insi_service.search(
            session,
            CLERK,
            insi_client,
            traits=TraitsQuery("Adrtrois", ("DOMINIQUE",), "F", dt.date(1997, 2, 26)),
        )
    assert insi_sandbox.received == []


async def test_unknown_idam_fault_is_traced(session, insi_client, insi_sandbox) -> None:
    insi_sandbox.known_idams = {"SOMETHING-ELSE"}
    with pytest.raises(InsiFault) as err:
        await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS)
    assert (err.value.subcode, err.value.desir) == ("siram_100", "desir_550")
    assert "desir_550" in exchanges(session)[0].fault


async def test_slow_insi_is_reported_unavailable(session, insi_sandbox, wsdl) -> None:
    insi_sandbox.delay = 1.0
    async with InsiClient(settings_for(insi_sandbox.url, wsdl, timeout=0.2)) as client:
        with pytest.raises(InsiUnavailable):
            await insi_service.search(session, CLERK, client, traits=ADRTROIS)
    assert "unreachable or too slow" in exchanges(session)[0].fault


async def test_malformed_envelope_gets_a_soap_fault(insi_sandbox) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(insi_sandbox.url, content=b"<not-soap/>")
    assert answer.status_code == 500 and b"Fault" in answer.content


async def test_cpx_mode_carries_the_saml_assertion(session, insi_client, insi_sandbox) -> None:
    assertion = '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0"/>'
    await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS, saml_assertion=assertion)
    assert insi_sandbox.received[0]["saml"] is True and exchanges(session)[0].request["auth"] == "cpx"


async def test_verification_ok_and_ko(session, insi_client) -> None:
    p = adrtrois(session)
    record_justificatif(session, CLERK, p, "CNI", JustificatifPolicy())
    validate_identity(session, CLERK, p)
    result = await insi_service.search(session, CLERK, insi_client, traits=ADRTROIS, patient=p)
    apply_insi_identity(session, CLERK, p, result.identity)
    assert await insi_service.verify(session, CLERK, insi_client, p) is True
    assert p.status is IdentityStatus.QUAL
    p.birth_date = dt.date(1997, 2, 27)  # the traits no longer match the INS
    assert await insi_service.verify(session, CLERK, insi_client, p) is False
    assert p.status is IdentityStatus.PROV and p.ins_matricule is None  # rule 49
    assert [e.operation for e in exchanges(session)][-2:] == ["verify", "verify"]
    assert session.exec(select(WorklistItem)).first().kind == "insi-verification-ko"
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "insi.verify")).all()


async def test_mutual_tls_with_an_insi_auto_certificate(session, tls_sandbox, wsdl, pki) -> None:
    settings = settings_for(
        tls_sandbox.url,
        wsdl,
        cert_path=pki["auto_cert"],
        key_path=pki["auto_key"],
        key_password="s3cret",
        ca_path=pki["ca"],
    )
    async with InsiClient(settings) as client:
        result = await insi_service.search(session, CLERK, client, traits=ADRTROIS)
    assert result.outcome is Outcome.found and tls_sandbox.received[0]["client_cn"] == "INSI-AUTO"


async def test_mutual_tls_refuses_a_wrong_cn_or_no_certificate(session, tls_sandbox, wsdl, pki) -> None:
    wrong = settings_for(
        tls_sandbox.url, wsdl, cert_path=pki["other_cert"], key_path=pki["other_key"], ca_path=pki["ca"]
    )
    async with InsiClient(wrong) as client:
        with pytest.raises(InsiFault, match="desir_560"):
            await insi_service.search(session, CLERK, client, traits=ADRTROIS)
    async with InsiClient(settings_for(tls_sandbox.url, wsdl, ca_path=pki["ca"])) as client:
        with pytest.raises(InsiUnavailable):
            await insi_service.search(session, CLERK, client, traits=ADRTROIS)
