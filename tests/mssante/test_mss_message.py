"""The MSSanté mail itself: headers, MIME tree, the IHE_XDM.zip and its metadata, the CDA inside."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import zipfile
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import Session

from ris.channels.mssante import deliver, xdm
from ris.store import blobs
from ris.store import documents as stored_documents
from ris.store.models import Channel, DeliveryStatus
from tests import factories
from tests.mssante.conftest import direct_settings, planned, with_documents

NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
RIM = {"rim": xdm.RIM, "lcm": xdm.LCM}


def _rendered(session: Session, *, qualified: bool = True, channel: Channel = Channel.mss_ps):
    settings = direct_settings()
    bundle = factories.validated_report(session, qualified=qualified, copies=1)
    with_documents(session, bundle, settings)
    rows = planned(session, bundle, settings)
    row = next(r for r in rows if r.channel is channel)
    message = deliver.render(session, row, settings, now=NOW)
    return bundle, row, message_from_bytes(message.as_bytes(), policy=default_policy), settings


def _zip(parsed) -> zipfile.ZipFile:
    part = next(p for p in parsed.iter_attachments() if p.get_filename() == "IHE_XDM.zip")
    assert part.get_content_type() == "application/zip"
    return zipfile.ZipFile(io.BytesIO(part.get_content()))


def test_professional_mail_has_the_headers_the_spec_requires(session: Session) -> None:
    bundle, row, mail, settings = _rendered(session)
    mss = settings.mssante
    assert mail["From"].addresses[0].addr_spec == mss.application_mailbox
    assert mail["From"].addresses[0].display_name == mss.sender_label
    assert mail["To"] == row.recipient == bundle.requester.mss_address
    assert mail["Reply-To"] == mss.reply_to
    assert mail["Message-ID"] == f"<{row.idempotency_key}@imagerie-demo.mssante.fr>"
    assert mail["Return-Receipt-To"] == mss.application_mailbox
    assert mail["Disposition-Notification-To"] == mss.application_mailbox
    assert mail["Subject"] == "XDM/1.0/DDM+SCANNER TÊTE AVEC INJECTION PAT-TROIS DOMINIQUE 28/03/1979"
    assert mail["X-MSS-MES"] is None  # the patient's mail only
    assert mail["Date"] and mail["MIME-Version"] == "1.0"


def test_mime_tree_is_text_then_xdm_zip_then_the_stored_pdf(session: Session) -> None:
    bundle, _row, mail, settings = _rendered(session)
    assert mail.get_content_type() == "multipart/mixed"
    parts = list(mail.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "application/zip", "application/pdf"]
    text = parts[0].get_content()
    assert settings.mssante.body_ps in text
    assert "généré automatiquement" in text and settings.mssante.reply_to in text  # RIS.MSS.11
    document = stored_documents.find(session, bundle.report.id, 1)
    assert parts[2].get_filename() == document.pdf_filename
    assert parts[2].get_content() == blobs.get(session, document.pdf_sha256)


def test_xdm_archive_holds_readme_index_metadata_and_the_cda_byte_for_byte(session: Session) -> None:
    bundle, _row, mail, _settings = _rendered(session)
    archive = _zip(mail)
    assert sorted(archive.namelist()) == sorted(
        ["README.TXT", "INDEX.HTM", "IHE_XDM/SUBSET01/METADATA.XML", "IHE_XDM/SUBSET01/DOC0001.XML"]
    )
    document = stored_documents.find(session, bundle.report.id, 1)
    cda = archive.read("IHE_XDM/SUBSET01/DOC0001.XML")
    assert cda == blobs.get(session, document.cda_sha256)
    assert b"Centre d'Imagerie" in archive.read("README.TXT")
    etree.fromstring(archive.read("INDEX.HTM"))  # well-formed XHTML
    meta = etree.fromstring(archive.read("IHE_XDM/SUBSET01/METADATA.XML"))
    assert meta.tag == f"{{{xdm.LCM}}}SubmitObjectsRequest"
    entry = meta.find(".//rim:ExtrinsicObject", RIM)
    assert entry.get("mimeType") == "text/xml" and entry.get("objectType") == xdm.STABLE_ENTRY

    def slot(name: str) -> list[str]:
        return entry.xpath(f"rim:Slot[@name='{name}']/rim:ValueList/rim:Value/text()", namespaces=RIM)

    import hashlib

    assert slot("URI") == ["DOC0001.XML"]
    assert slot("hash") == [hashlib.sha1(cda).hexdigest()]
    assert slot("size") == [str(len(cda))]
    assert slot("languageCode") == ["fr-FR"]
    assert slot("sourcePatientId")[0].startswith(bundle.patient.ipp + "^^^&")
    ids = {
        i.get("identificationScheme"): i.get("value") for i in entry.findall("rim:ExternalIdentifier", RIM)
    }
    assert ids[xdm.DE["uniqueId"]] == document.document_id
    assert ids[xdm.DE["patientId"]] == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    codes = {
        c.get("classificationScheme"): c.get("nodeRepresentation")
        for c in entry.findall("rim:Classification", RIM)
    }
    assert codes[xdm.DE["typeCode"]] == "18748-4"
    assert codes[xdm.DE["classCode"]] == "31"
    assert codes[xdm.DE["formatCode"]] == "urn:ihe:iti:xds-sd:pdf:2008"
    assert codes[xdm.DE["confidentialityCode"]] == "N"
    package = meta.find(".//rim:RegistryPackage", RIM)
    association = meta.find(".//rim:Association", RIM)
    assert association.get("sourceObject") == package.get("id")
    assert association.get("targetObject") == entry.get("id")
    assert not slot(xdm.ACTION_SLOT)  # an initial send carries no action


def test_unqualified_identity_mail_carries_traits_only(session: Session) -> None:
    bundle, _row, mail, _ = _rendered(session, qualified=False)
    archive = _zip(mail)
    assert bundle.patient.ins_matricule is None
    meta = archive.read("IHE_XDM/SUBSET01/METADATA.XML").decode()
    assert "1.2.250.1.213.1.4." not in meta and "^NH" not in meta
    patient_row = next(
        r for r in planned(session, bundle, direct_settings()) if r.channel is Channel.mss_patient
    )
    assert patient_row.status is DeliveryStatus.blocked


def test_patient_mail_goes_to_the_ins_mailbox_with_fin_and_its_own_text(session: Session) -> None:
    _bundle, _row, mail, settings = _rendered(session, channel=Channel.mss_patient)
    assert mail["To"] == "279035121518989@patient.mssante.fr"
    assert mail["X-MSS-MES"] == "FIN"
    assert settings.mssante.body_patient in next(mail.iter_parts()).get_content()


@pytest.mark.slow  # cda_validate.py -p all takes a few seconds
def test_cda_in_the_xdm_passes_the_ans_validation(session: Session, shared: Path, tmp_path: Path) -> None:
    _bundle, _row, mail, _ = _rendered(session)
    path = tmp_path / "DOC0001.XML"
    path.write_bytes(_zip(mail).read("IHE_XDM/SUBSET01/DOC0001.XML"))
    result = subprocess.run(
        [sys.executable, str(shared / "tools" / "cda_validate.py"), "-p", "all", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_replacement_says_annule_et_remplace_and_deletion_notice_carries_action_d(session: Session) -> None:
    from ris.lifecycle import reports
    from ris.store.models import Delivery
    from ris.store.reports import load_bundle

    settings = direct_settings()
    bundle = factories.validated_report(session, copies=0)
    with_documents(session, bundle, settings)
    reports.replace(
        session, bundle.report.id, bundle.report.body + "\nAddendum.", None, factories.RADIOLOGIST_RPPS
    )
    session.commit()
    v2 = load_bundle(session, bundle.report.id)
    with_documents(session, v2, settings)
    row = next(r for r in planned(session, v2, settings) if r.channel is Channel.mss_ps)
    assert (row.version, row.action) == (2, "replace")
    mail = message_from_bytes(
        deliver.render(session, row, settings, now=NOW).as_bytes(), policy=default_policy
    )
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith(settings.mssante.replacement_text)  # RIS.MSS.15
    meta = etree.fromstring(_zip(mail).read("IHE_XDM/SUBSET01/METADATA.XML"))
    assert meta.xpath(
        f"//rim:Slot[@name='{xdm.ACTION_SLOT}']/rim:ValueList/rim:Value/text()", namespaces=RIM
    ) == ["C"]
    assert b"RPLC" in _zip(mail).read("IHE_XDM/SUBSET01/DOC0001.XML")
    notice = Delivery(
        report_id=row.report_id,
        version=2,
        action="delete",
        channel=Channel.mss_ps,
        recipient=row.recipient,
        route="direct",
        status=DeliveryStatus.pending,
        idempotency_key="notice",
    )
    deleted = message_from_bytes(
        deliver.render(session, notice, settings, now=NOW).as_bytes(), policy=default_policy
    )
    assert deleted.get_body(("plain",)).get_content().startswith(settings.mssante.deletion_text)  # RIS.MSS.16
    meta = etree.fromstring(_zip(deleted).read("IHE_XDM/SUBSET01/METADATA.XML"))
    assert meta.xpath(
        f"//rim:Slot[@name='{xdm.ACTION_SLOT}']/rim:ValueList/rim:Value/text()", namespaces=RIM
    ) == ["D"]
