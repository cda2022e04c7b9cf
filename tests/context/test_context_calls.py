"""Outgoing contextual calls (RIS.DMP.04–05, RIS.AC.01): the DMP web PS and the PACS viewer opened on the
patient with the full INS and the strict traits, for a qualified identity only; the DMP call is a POST (the
INS never in an address: tests/context/test_context_post.py serves it), a GET address goes to the
professional who asked and nowhere else (the audit trail records the call without the INS)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from ris.identity import contextual_calls as context_calls
from ris.site.call_targets import ContextCalls, ContextCallTarget
from ris.store.db import session_scope
from ris.store.models import AuditEntry, IdentityStatus
from tests import factories

RPPS = factories.RADIOLOGIST_RPPS
DMP_URL = "https://dmp-web-ps.test/ps/dossier-patient"
PACS_URL = "https://viewer.imagerie-demo.test/open?site=demo"


def _settings() -> ContextCalls:
    settings = ContextCalls()
    settings.dmp.url, settings.pacs.url = DMP_URL, PACS_URL
    return settings


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_dmp_call_opens_the_patients_record_with_the_ins_strict_traits_and_the_ps(session):
    bundle = factories.validated_report(session, copies=0)
    call = context_calls.build(session, bundle.report.id, "dmp", _settings(), ps_rpps=RPPS)
    assert (call.method, call.action) == ("post", DMP_URL)  # TD0.9: a form posted, the address bare
    assert dict(call.fields) == {
        "ins": "279035121518989",
        "oid": "1.2.250.1.213.1.4.10",
        "nom": "PAT-TROIS",
        "prenom": "DOMINIQUE",
        "datenaissance": "1979-03-28",
        "sexe": "F",
        "rpps": RPPS,
    }
    [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "context.call")).all()
    assert (entry.actor, entry.object_id, entry.detail["target"]) == (RPPS, str(bundle.patient.id), "dmp")
    assert "279035121518989" not in str(entry.detail) and "PAT-TROIS" not in str(entry.detail)


def test_the_pacs_call_names_the_exam_of_a_report_and_only_the_patient_for_an_ipp(session):
    bundle = factories.validated_report(session, copies=0)
    by_report = _query(context_calls.build(session, bundle.report.id, "pacs", _settings(), ps_rpps=RPPS).url)
    assert by_report["accession"] == bundle.exam.accession_number and by_report["site"] == "demo"
    by_ipp = _query(context_calls.build(session, bundle.patient.ipp, "pacs", _settings(), ps_rpps=RPPS).url)
    assert "accession" not in by_ipp and by_ipp["ins"] == "279035121518989"
    settings = _settings()
    settings.pacs.parameters["naissance"], settings.pacs.date_format = "birth_date", "%d/%m/%Y"
    settings.pacs.parameters["nature"] = "ins_nature"
    dated = _query(context_calls.build(session, bundle.report.id, "pacs", settings, ps_rpps=RPPS).url)
    assert (dated["naissance"], dated["nature"]) == ("28/03/1979", "NIR")


@pytest.mark.parametrize(
    ("status", "name"),
    [(IdentityStatus.VALI, "identité validée"), (IdentityStatus.PROV, "identité provisoire")],
)
def test_an_identity_that_is_not_qualified_is_refused_naming_its_status(session, status, name):
    patient = factories.patient(session, qualified=False, status=status)
    bundle = factories.validated_report(session, patient_row=patient, copies=0)
    with pytest.raises(context_calls.ContextCallRefused) as refused:
        context_calls.build(session, bundle.report.id, "dmp", _settings(), ps_rpps=RPPS)
    assert str(refused.value) == (
        f"ID {bundle.report.id}: identity status {status.value} ({name}): a contextual call carries the INS "
        "of an identité qualifiée only (INS rule 28)"
    )
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "context.call")).all() == []


def test_unknown_ids_unset_targets_and_unsafe_settings_are_refused(session):
    with pytest.raises(context_calls.ContextCallRefused, match=r"^ID 'nope': neither a report id nor"):
        context_calls.build(session, "nope", "dmp", _settings(), ps_rpps=RPPS)
    with pytest.raises(context_calls.ContextCallRefused, match=r"^context_calls\.dmp\.url: not set"):
        context_calls.build(session, "nope", "dmp", ContextCalls(), ps_rpps=RPPS)
    with pytest.raises(ValidationError, match=r"url\n.*must be an https:// address"):
        ContextCallTarget(url="http://viewer.test/open", parameters={"ins": "ins", "oid": "ins_oid"})
    with pytest.raises(ValidationError, match=r"parameters must carry ins_oid \(RIS.AC.01: the full INS\)"):
        ContextCallTarget(url=PACS_URL, parameters={"ins": "ins"})


@pytest.fixture
async def site_with_targets(prefect_server):
    from blocks import DEFAULT_NAME
    from blocks.site import SiteSettingsBlock
    from ris.site.settings import SiteSettings

    await SiteSettingsBlock(settings=SiteSettings(context_calls=_settings())).asave(
        DEFAULT_NAME, overwrite=True
    )


def test_cli_prints_the_address_to_the_asker_only_and_refuses_in_one_line(site_with_targets, acting_users):
    with session_scope() as session:
        qualified = factories.validated_report(session, copies=0).report.id
        patient = factories.patient(session, qualified=False, status=IdentityStatus.VALI)
        validated = factories.validated_report(session, patient_row=patient, copies=0).report.id
    runner = CliRunner()
    done = runner.invoke(app, ["context-url", qualified, "--target", "pacs", "--by", RPPS])
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith(PACS_URL + "&") and "ins=279035121518989" in done.stdout
    assert done.stderr == ""
    refused = runner.invoke(app, ["context-url", validated, "--target", "pacs", "--by", RPPS])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"error: ID {validated}: identity status VALI (identité validée): a contextual call carries the INS "
        "of an identité qualifiée only (INS rule 28)"
    ]
    wrong = runner.invoke(app, ["context-url", qualified, "--target", "web", "--by", RPPS])
    assert wrong.exit_code == 1 and "--target 'web': one of dmp, pacs" in wrong.stderr
