"""Nominative sending (RIS.MSS.24, label RIS.MSS.13): an SCM sends from the validating radiologist's personal
mailbox, chosen from the RPPS-Rang certificate pool, else the directory, else the radiologist's record;
over real sockets the sandbox operator records that mailbox in `From` (with its `Titre_Prénom_NOM_Entité`
label) and as the envelope sender, on a session opened with the radiologist's own certificate."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlmodel import Session

from blocks import DEFAULT_NAME
from blocks.certificates import RppsRangCertificates, RppsRangEntry
from blocks.site import SiteSettingsBlock
from flows.report_lifecycle import report_lifecycle
from ris.channels.mssante.sender import SenderUnavailable, personal_label, sender_for
from ris.site.settings import MssanteSending
from ris.store.db import session_scope
from ris.store.models import DirectoryMailbox
from sandbox.pki import write_cert, write_key
from tests import factories
from tests.mssante.conftest import direct_settings
from tests.mssante.test_manual_send import list_in_directory

RADIOLOGIST = factories.RADIOLOGIST_RPPS
PERSONAL = "emile.lefevre@medecin.mssante.fr"
NOMINATIVE = MssanteSending(sender_mailbox="radiologist", functional_unit="Radiologie")


def test_the_label_is_titre_prenom_nom_entite_and_only_names_are_needed():
    assert personal_label(title="Dr", given="Jacques", family="Bideault", unit="Radiologie") == (
        "Dr_Jacques_BIDEAULT_Radiologie"
    )
    assert personal_label(title=None, given="Jean Pierre", family="Le Goff") == "Jean-Pierre_LE-GOFF"


def test_the_personal_mailbox_comes_from_the_pool_then_the_directory_then_the_record(session: Session):
    factories.validated_report(session, copies=0)  # the radiologist's record: LEFÈVRE Émile, Dr
    application = sender_for(session, RADIOLOGIST, MssanteSending(), {RADIOLOGIST: PERSONAL})
    assert (application.address, application.personal) == ("cr-imagerie@imagerie-demo.mssante.fr", False)

    own = sender_for(session, RADIOLOGIST, NOMINATIVE, {})
    assert (own.address, own.label) == (
        "emile.lefevre@imagerie-demo.mssante.fr",
        "Dr_Émile_LEFÈVRE_Radiologie",
    )
    list_in_directory(session, "e.lefevre@medecin.mssante.fr", rpps=RADIOLOGIST)  # the directory's own name
    listed = sender_for(session, RADIOLOGIST, NOMINATIVE, {})
    assert (listed.address, listed.label) == (
        "e.lefevre@medecin.mssante.fr",
        "Dr_Jacques_BIDEAULT_Radiologie",
    )
    assert sender_for(session, RADIOLOGIST, NOMINATIVE, {RADIOLOGIST: PERSONAL}).address == PERSONAL

    session.add(
        DirectoryMailbox(address="autre@hopital.mssante.fr", kind="PER", rpps=RADIOLOGIST, import_run="t")
    )
    session.commit()
    with pytest.raises(SenderUnavailable, match=f"RPPS {RADIOLOGIST} has 2 personal MSSanté mailboxes"):
        sender_for(session, RADIOLOGIST, NOMINATIVE, {})
    with pytest.raises(SenderUnavailable, match="no personal MSSanté mailbox for RPPS 10009999999"):
        sender_for(session, "10009999999", NOMINATIVE, {})


@pytest.mark.slow
async def test_nominative_mode_puts_the_radiologists_mailbox_in_from_and_the_envelope(
    direct_site, tmp_path: Path
):
    operator = direct_site
    cert, key = operator.mss_pki.authority.client(f"{RADIOLOGIST} LEFEVRE EMILE")  # an RPPS-Rang certificate
    write_cert(tmp_path / "rpps.pem", cert)
    write_key(tmp_path / "rpps.key", key)
    settings = direct_settings(sender_mailbox="radiologist", functional_unit="Radiologie")
    await SiteSettingsBlock(settings=settings).asave(DEFAULT_NAME, overwrite=True)
    entry = RppsRangEntry(
        rpps=RADIOLOGIST, cert_path=tmp_path / "rpps.pem", key_path=tmp_path / "rpps.key", mailbox=PERSONAL
    )
    await RppsRangCertificates(certificates=[entry]).asave(DEFAULT_NAME, overwrite=True)
    try:
        with session_scope() as session:
            report_id = factories.validated_report(session, copies=0).report.id
        await report_lifecycle(report_id, 1)
    finally:
        await RppsRangCertificates.adelete(DEFAULT_NAME)  # the next tests' site is no SCM
    mails = operator.accepted()
    assert len(mails) == 2  # the requester's and the patient's
    for received, envelope in zip(mails, operator.envelopes, strict=True):
        sender = message_from_bytes(received.data, policy=default_policy)["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("Dr_Émile_LEFÈVRE_Radiologie", PERSONAL)
        assert received.mail_from == PERSONAL  # the envelope sender
        assert message_from_bytes(received.data)["Return-Receipt-To"] == PERSONAL
        assert f"CN={RADIOLOGIST} LEFEVRE EMILE" in envelope.client_subject.replace("commonName=", "CN=")
