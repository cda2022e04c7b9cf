"""The site's list of accepted identity documents read where an identity is qualified (RIS.INS.18-21), and a
partner-exchange row for every contextual call that hands the INS over (INS rule 31, RIS.INS.51)."""

from __future__ import annotations

import asyncio

from sqlmodel import select
from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.site import SiteSettingsBlock
from cli.main import app
from ris.identity import contextual_calls as context_calls
from ris.operations.demo import sample_worklist
from ris.site.call_targets import ContextCalls
from ris.site.justificatifs import Justificatif, JustificatifPolicy
from ris.site.settings import SiteSettings
from ris.store.db import session_scope
from ris.store.models import AuditEntry, ExchangeChannel, IdentityStatus, PartnerExchange, Patient
from ris.worklist import loader as worklist
from tests import factories


async def _cli(args: list[str]):
    return await asyncio.to_thread(CliRunner().invoke, app, args)  # the CLI runs its own event loop


SECRETARY = "10001234568"  # a demo radiologist: identity.write (acting_users)


async def test_the_sites_own_list_of_identity_documents_qualifies_an_identity(
    prefect_server, db_url, acting_users
):
    site = SiteSettings(
        justificatifs=JustificatifPolicy(
            catalogue=[
                Justificatif(
                    code="CNI", label="Carte nationale d'identité", nature="document", high_confidence=True
                ),
                Justificatif(code="VITALE", label="Carte Vitale", nature="electronic", high_confidence=False),
            ],
            auto_validate=True,
        )
    )
    await SiteSettingsBlock(settings=site).asave(DEFAULT_NAME, overwrite=True)
    data = sample_worklist(4)
    with session_scope() as session:
        assert worklist.load(session, data).ok
    ipp = data["patients"][3]["ipp"]  # a PROV identity without INS
    by = ["--by", SECRETARY]
    passport = await _cli(["identity", "justificatif", ipp, "--code", "PASSPORT", *by])
    assert (
        passport.exit_code == 1 and "'PASSPORT' is not in the site catalogue (INS rule 19)" in passport.stderr
    )
    assert "the site's documents: CNI, VITALE" in passport.stderr
    low = await _cli(["identity", "justificatif", ipp, "--code", "VITALE", *by])
    assert low.exit_code == 0 and "Carte Vitale recorded (not high confidence)" in low.stdout
    manual = await _cli(["identity", "validate", ipp, *by])
    assert manual.exit_code == 1 and "needs a high-confidence proof" in manual.stderr
    cni = await _cli(["identity", "justificatif", ipp, "--code", "CNI", *by])
    assert cni.exit_code == 0, cni.output
    assert "identity validated (PROV -> VALI)" in cni.stdout  # the site's automatism (RIS.INS.21)
    with session_scope() as session:
        patient = session.exec(select(Patient).where(Patient.ipp == ipp)).one()
        assert (patient.status, patient.justificatif_kind) == (IdentityStatus.VALI, "CNI")
        actors = {
            e.actor
            for e in session.exec(select(AuditEntry).where(AuditEntry.action == "identity.justificatif"))
        }
    assert actors == {SECRETARY}
    again = await _cli(["identity", "validate", ipp, *by])
    assert again.exit_code == 0 and "already validated; nothing recorded" in again.stdout


def test_a_contextual_call_is_a_partner_exchange_of_the_ins(session):
    bundle = factories.validated_report(session, copies=0)
    settings = ContextCalls()
    settings.pacs.url = "https://viewer.imagerie-demo.test/open?site=demo"
    context_calls.build(session, bundle.report.id, "pacs", settings, ps_rpps=factories.RADIOLOGIST_RPPS)
    [row] = session.exec(select(PartnerExchange)).all()
    assert (row.patient_id, row.channel, row.partner) == (
        bundle.patient.id,
        ExchangeChannel.context_call,
        "contextual call pacs viewer.imagerie-demo.test",
    )
