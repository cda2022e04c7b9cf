"""The PDF/A-1b report: content (accents exact), identity rules, Datamatrix, footer on every page."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
import zxingcpp
from PIL import Image
from sqlmodel import Session

from ris import documents
from ris.documents.pdf import replacement_banner
from ris.identity import datamatrix
from ris.site.settings import SiteSettings
from ris.store.models import IdentityStatus
from tests import factories
from tests.documents.conftest import ADRUN_ZOE, PROVISOIRE_MATRICULE, pdftotext, replace
from tests.site_clock import PARIS_MIDNIGHT_SUMMER, PARIS_MIDNIGHT_WINTER, at_instant

RGPD = "Mentions RGPD : vos données sont traitées par le centre ; délégué : dpo@exemple.fr."
LONG_BODY = "\n\n".join(
    f"Paragraphe {n} : hypodensité séquellaire frontale, sans effet de masse ; à noter un kyste "
    "arachnoïdien de la fosse postérieure, stable par rapport à l'examen antérieur. Pas de prise de "
    "contraste pathologique. Sinus de la face bien pneumatisés, pas de niveau hydro-aérique."
    for n in range(1, 31)
)


def write(tmp_path: Path, built: documents.BuiltDocuments, name: str = "cr.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(built.pdf)
    return path


def test_qualified_report_content(session: Session, settings: SiteSettings, tmp_path: Path) -> None:
    bundle = at_instant(factories.validated_report(session, copies=2), PARIS_MIDNIGHT_WINTER)
    built = documents.build(bundle, settings)
    text = pdftotext(write(tmp_path, built))
    for expected in (
        "Centre d'Imagerie Médicale Démo",
        "12 rue de l'Hôpital, 75012 Paris",
        "FINESS 750000001",
        "Scanner cérébral avec injection",
        "Nom de naissance :",
        "PAT-TROIS",
        "1er prénom de naissance :",
        "28/03/1979",
        "Féminin",
        "279035121518989 NIR",
        "Code lieu de naissance :",
        "Tomodensitométrie (CT)",
        "ACC",
        "Dr Hélène FRANÇOIS — helene.francois",
        "Résultats : pas de lésion hémorragique ; ventricules de taille normale ; œdème absent.",
        "Examen normal. Pas d'anomalie décelée à l'étage encéphalique.",
        "par Dr Émile LEFÈVRE (RPPS 10001234567)",
        "Destinataires",
        "Dr Chloé MARTIN — chloe.martin",
        "Le patient — messagerie Mon espace santé",
        "Page 1 / 1",
        "INS",
    ):
        assert expected in text, expected
    assert " ".join(settings.rgpd_notice.split()[:12]) in " ".join(text.split())
    assert "Validé le 05/12/2026 à 00:30 par Dr Émile LEFÈVRE" in text  # PARIS_MIDNIGHT_WINTER


def test_validation_time_is_printed_in_paris_time(session: Session, settings: SiteSettings) -> None:
    import datetime as dt

    bundle = factories.validated_report(session)
    bundle.version.validated_at = dt.datetime(2026, 7, 14, 21, 45)  # naive UTC, as SQLite returns it
    from ris.documents.facts import collect
    from ris.documents.pdf import validation_line

    line = validation_line(collect(bundle, settings))
    assert line == "Validé le 14/07/2026 à 23:45 par Dr Émile LEFÈVRE (RPPS 10001234567)"


def test_pdf_is_pdfa_1b_with_consistent_accented_metadata(
    session: Session, settings: SiteSettings, tmp_path: Path
) -> None:
    built = documents.build(factories.validated_report(session), settings)
    path = write(tmp_path, built)
    assert pikepdf.pdfa.validate_written(path, "1b").passed
    with pikepdf.open(path) as pdf:
        assert pdf.pdf_version == "1.4"
        assert str(pdf.docinfo["/Author"]) == "Dr Émile LEFÈVRE"
        assert str(pdf.docinfo["/Title"]) == "CR d'imagerie médicale – Scanner tête avec injection"
        with pdf.open_metadata() as meta:
            assert meta["pdfaid:part"] == "1" and meta["pdfaid:conformance"] == "B"
            assert meta["dc:title"] == "CR d'imagerie médicale – Scanner tête avec injection"
        assert "/OpenAction" not in pdf.Root
        for page in pdf.pages:
            assert "/Group" not in page  # no transparency group (PDF/A-1)
            for image in page.images.values():
                assert "/SMask" not in image
        fonts = {str(f.BaseFont) for page in pdf.pages for f in page.Resources.Font.values()}
        assert fonts and all("DejaVu" in f for f in fonts)


def test_same_bundle_gives_the_same_bytes(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session)
    first, second = documents.build(bundle, settings), documents.build(bundle, settings)
    assert (first.pdf, first.cda, first.pdf_filename) == (second.pdf, second.cda, second.pdf_filename)


def test_datamatrix_in_the_page_decodes_to_the_ins_payload(
    session: Session, settings: SiteSettings, tmp_path: Path
) -> None:
    bundle = factories.validated_report(session, patient_row=factories.patient(session, **ADRUN_ZOE))
    path = write(tmp_path, documents.build(bundle, settings))
    expected = datamatrix.payload_for(bundle.patient).encode("ascii")
    assert b"S3ZOE\x1dS4ADRUN\x1d" in expected
    # as printed: rasterise page 1 and read it back with an independent decoder
    subprocess.run(
        ["pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", str(path), str(tmp_path / "p")], check=True
    )
    page = Image.open(next(tmp_path.glob("p*.png")))
    assert [r.bytes for r in zxingcpp.read_barcodes(page, formats=zxingcpp.BarcodeFormat.DataMatrix)] == [
        expected
    ]
    # as embedded: the image object itself, opaque RGB
    with pikepdf.open(path) as pdf:
        (image,) = pdf.pages[0].images.values()
        assert image.ColorSpace == "/DeviceRGB"
        assert datamatrix.decode(pikepdf.PdfImage(image).as_pil_image()) == expected


@pytest.mark.parametrize("status", [IdentityStatus.PROV, IdentityStatus.VALI])
def test_unqualified_identity_prints_traits_only(
    session: Session, settings: SiteSettings, tmp_path: Path, status: IdentityStatus
) -> None:
    patient = factories.patient(
        session,
        qualified=False,
        status=status,
        **{k: v for k, v in PROVISOIRE_MATRICULE.items() if not k.startswith("ins_")},
    )
    patient.ins_matricule, patient.ins_oid = "109076322088835", "1.2.250.1.213.1.4.9"  # known, not qualified
    built = documents.build(factories.validated_report(session, patient_row=patient), settings)
    path = write(tmp_path, built)
    text = pdftotext(path)
    assert "PROVISOIRE" in text and "01/07/2009" in text and "Masculin" in text
    assert "109076322088835" not in text and "Matricule INS" not in text
    assert "Le patient — messagerie" not in text  # no INS: the patient's mailbox is not a recipient
    with pikepdf.open(path) as pdf:
        assert not any(page.images for page in pdf.pages)  # no Datamatrix


def test_nia_is_labelled_by_its_oid(session: Session, settings: SiteSettings, tmp_path: Path) -> None:
    bundle = factories.validated_report(
        session, patient_row=factories.patient(session, **PROVISOIRE_MATRICULE)
    )
    assert "109076322088835 NIA" in pdftotext(write(tmp_path, documents.build(bundle, settings)))


def test_extra_traits_follow_the_site_setting(session: Session, tmp_path: Path) -> None:
    bundle = factories.validated_report(session)
    text = pdftotext(write(tmp_path, documents.build(bundle, SiteSettings(paper_extra_traits=[]))))
    assert "Nom utilisé" not in text and "Code lieu de naissance" not in text
    text = pdftotext(
        write(tmp_path, documents.build(bundle, SiteSettings(paper_extra_traits=["used_given_name"])))
    )
    assert "Prénom utilisé :" in text and "Nom utilisé" not in text


def test_replacement_banner_and_rgpd_footer_on_every_page(
    session: Session, settings: SiteSettings, tmp_path: Path
) -> None:
    first = factories.validated_report(session)
    bundle = replace(session, first, body=LONG_BODY)
    bundle.previous.validated_at = PARIS_MIDNIGHT_SUMMER  # 01:30 on 15 July in Paris
    custom = settings.model_copy(
        update={
            "replacement_notice": "Ce compte rendu annule et remplace celui du {date}.",
            "rgpd_notice": RGPD,
        }
    )
    path = write(tmp_path, documents.build(bundle, custom))
    pages = pdftotext(path).split("\f")[:-1]
    assert len(pages) >= 2
    assert "Ce compte rendu annule et remplace celui du 15/07/2026." in pages[0]
    for number, page in enumerate(pages, start=1):
        assert RGPD in page
        assert f"Page {number} / {len(pages)}" in page
    assert "Paragraphe 30 : hypodensité séquellaire frontale" in "".join(pages)
    assert replacement_banner.__name__  # the banner helper is public for the MSSanté body text


def test_file_name_is_ascii_with_underscores(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(
        session,
        patient_row=factories.patient(
            session, **{**ADRUN_ZOE, "birth_name": "DE LA FONTAINE-ÉPÉE", "first_birth_given_name": "ZOÉ"}
        ),
    )
    name = documents.build(at_instant(bundle, PARIS_MIDNIGHT_WINTER), settings).pdf_filename
    assert name == "20261205_CR_d_imagerie_medicale_DE-LA-FONTAINE-EPEE_ZOE.pdf"  # the day in Paris
    assert name.isascii()
    assert "DE-LA-FONTAINE" not in repr(documents.build(bundle, settings))
