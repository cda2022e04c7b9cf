"""The report as a PDF/A-1b file (cda-cr-ima.md §6-7, library-notes.md §2).

fpdf2 draws the pages; pikepdf.pdfa adds the OutputIntent, the XMP packet and the CIDSets, writes
PDF 1.4 and validates the written bytes. fpdf2 always writes an /OpenAction that pikepdf's allow-list
rejects, so it is removed first. Dates in the file are the document's creation time, so the same
facts give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io

import pikepdf
import pikepdf.pdfa
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from ris.documents import fonts
from ris.documents.facts import SEX_LABELS, DocumentError, Facts
from ris.identity import datamatrix
from ris.site.settings import SiteSettings

PRODUCER = "RIS engine"
MARGIN = 18.0
ACCENT = (31, 73, 125)
GREY = (90, 90, 90)
DATAMATRIX_MM = 22.0
BODY_PT = 10
FOOTER_PT = 7


def date_fr(moment: dt.datetime | dt.date) -> str:
    return moment.strftime("%d/%m/%Y")


def time_fr(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M")


def validation_line(facts: Facts) -> str:
    """RIS.CRR.01: « Validé le JJ/MM/AAAA à HH:MM par Dr Prénom NOM (RPPS nnnnnnnnnnn) »."""
    who = facts.validator
    return (
        f"Validé le {date_fr(facts.validated_at)} à {time_fr(facts.validated_at)} "
        f"par {who.display} (RPPS {who.rpps})"
    )


def replacement_banner(facts: Facts, settings: SiteSettings) -> str | None:
    """RIS.MSS.15: the site's « annule et remplace » notice on versions ≥ 2."""
    if facts.previous_validated_at is None:
        return None
    return settings.replacement_notice.replace("{date}", date_fr(facts.previous_validated_at))


def identity_lines(facts: Facts, settings: SiteSettings) -> list[tuple[str, str]]:
    """Rule 32 minimum (ins.md §12), the site's extra traits (RIS.INS.53), the INS only if qualified."""
    patient = facts.patient
    lines = [
        ("Nom de naissance", patient.birth_name),
        ("1er prénom de naissance", patient.first_birth_given_name),
        ("Date de naissance", date_fr(patient.birth_date)),
        ("Sexe", SEX_LABELS[patient.sex]),
    ]
    if facts.ins_qualified:
        lines.append(("Matricule INS", f"{patient.ins_matricule} {facts.ins_nature}"))
    extras = {
        "used_name": ("Nom utilisé", patient.used_name),
        "used_given_name": ("Prénom utilisé", patient.used_given_name),
        "birth_place_code": ("Code lieu de naissance", patient.birth_place_code),
    }
    lines += [extras[trait] for trait in settings.paper_extra_traits if extras[trait][1]]
    lines.append(("IPP", patient.ipp))
    return lines


class _ReportPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4", unit="mm")
        self.footer_text = footer_text
        self.allow_images_transparency = False  # PDF/A-1 forbids transparency groups
        fonts.install(self)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.footer_height = 0.0

    def first_page(self) -> None:
        """Add page 1 and reserve the footer's height (measuring needs a page) on every page."""
        self.add_page()
        self.set_font(fonts.FAMILY, size=FOOTER_PT)
        footer_lines = self.multi_cell(self.epw, 3.2, self.footer_text, dry_run=True, output="LINES")
        self.footer_height = 3.2 * len(footer_lines) + 9
        self.set_auto_page_break(True, margin=self.footer_height + 4)

    def footer(self) -> None:
        """RIS.DOC.06: the RGPD notice at the foot of every page, then the page number."""
        self.set_y(-self.footer_height)
        self.set_draw_color(*GREY)
        self.line(MARGIN, self.get_y(), self.w - MARGIN, self.get_y())
        self.ln(1.5)
        self.set_font(fonts.FAMILY, size=FOOTER_PT)
        self.set_text_color(*GREY)
        self.multi_cell(0, 3.2, self.footer_text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 4, f"Page {self.page_no()} / {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _heading(doc: FPDF, text: str) -> None:
    doc.ln(2.5)
    doc.set_font(fonts.FAMILY, "B", 11)
    doc.set_text_color(*ACCENT)
    doc.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_draw_color(*ACCENT)
    doc.line(MARGIN, doc.get_y(), doc.w - MARGIN, doc.get_y())
    doc.ln(1.5)
    doc.set_text_color(0, 0, 0)


def _pairs(doc: FPDF, rows: list[tuple[str, str]], width: float, label_width: float = 56) -> None:
    for label, value in rows:
        doc.set_x(MARGIN)
        doc.set_font(fonts.FAMILY, "B", BODY_PT)
        doc.cell(label_width, 5.5, f"{label} :")
        doc.set_font(fonts.FAMILY, size=BODY_PT)
        doc.multi_cell(width - label_width, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _header(doc: FPDF, settings: SiteSettings) -> None:
    facility = settings.facility
    doc.set_font(fonts.FAMILY, "B", 14)
    doc.set_text_color(*ACCENT)
    doc.cell(0, 7, facility.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    doc.set_font(fonts.FAMILY, size=9)
    doc.cell(
        0,
        4.5,
        f"{facility.street}, {facility.postal_code} {facility.city}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    doc.cell(
        0, 4.5, f"Tél. {facility.phone} — FINESS {facility.finess_geo}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    doc.ln(3)


def _banner(doc: FPDF, text: str) -> None:
    doc.set_font(fonts.FAMILY, "B", 11)
    doc.set_fill_color(253, 236, 200)
    doc.set_draw_color(200, 120, 0)
    doc.multi_cell(0, 7, text, border=1, fill=True, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.ln(2)


def _identity(doc: FPDF, facts: Facts, settings: SiteSettings) -> None:
    _heading(doc, "Patient")
    top = doc.get_y()
    text_width = doc.epw - (DATAMATRIX_MM + 8 if facts.datamatrix_payload else 0)
    _pairs(doc, identity_lines(facts, settings), text_width)
    below_text = doc.get_y()
    if facts.datamatrix_payload:
        # RIS.INS.54 / RIS.DOC.03: Datamatrix INS, caption "INS", for a qualified identity only.
        x = doc.w - MARGIN - DATAMATRIX_MM
        image = datamatrix.encode(facts.datamatrix_payload)
        doc.image(image, x=x, y=top, w=DATAMATRIX_MM, h=DATAMATRIX_MM)
        doc.set_xy(x, top + DATAMATRIX_MM)
        doc.set_font(fonts.FAMILY, "B", 8)
        doc.cell(DATAMATRIX_MM, 4, "INS", align="C")
        doc.set_xy(MARGIN, max(below_text, top + DATAMATRIX_MM + 5))


def _exam(doc: FPDF, facts: Facts) -> None:
    exam = facts.exam
    _heading(doc, "Examen")
    rows = [
        ("Examen", exam.exam_label),
        ("Date", f"{date_fr(facts.exam_started_at)} à {time_fr(facts.exam_started_at)}"),
        ("Modalité", f"{facts.modality_label} ({exam.modality})"),
        ("N° d'examen", exam.accession_number),
    ]
    if facts.requester:
        # RIS.DOC.05: the requester and its MSSanté address.
        who = facts.requester.display
        rows.append(
            ("Demandeur", f"{who} — {facts.requester.mss_address}" if facts.requester.mss_address else who)
        )
    _pairs(doc, rows, doc.epw, label_width=32)


def _text(doc: FPDF, facts: Facts) -> None:
    _heading(doc, "Compte rendu")
    doc.set_font(fonts.FAMILY, size=BODY_PT)
    doc.multi_cell(0, 5.2, facts.body.strip(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if facts.conclusion.strip():
        _heading(doc, "Conclusion")
        doc.set_font(fonts.FAMILY, "B", BODY_PT)
        doc.multi_cell(0, 5.2, facts.conclusion.strip(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _status(doc: FPDF, facts: Facts) -> None:
    doc.ln(4)
    doc.set_font(fonts.FAMILY, "B", BODY_PT)
    doc.set_fill_color(228, 238, 247)
    doc.multi_cell(0, 6.5, validation_line(facts), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _recipients(doc: FPDF, facts: Facts) -> None:
    """RIS.DOC.04: every recipient the report is sent to (ris.lifecycle.routing.listed_recipients)."""
    _heading(doc, "Destinataires")
    doc.set_font(fonts.FAMILY, size=9)
    if not facts.recipients:
        doc.multi_cell(0, 5, "Aucun envoi électronique.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for line in facts.recipients:
        doc.multi_cell(0, 5, f"• {line}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def pdf_title(facts: Facts) -> str:
    return f"CR d'imagerie médicale – {facts.exam.exam_label}"


def draw(facts: Facts, settings: SiteSettings) -> bytes:
    """The plain fpdf2 rendering (not yet PDF/A)."""
    doc = _ReportPdf(settings.rgpd_notice)
    doc.set_title(pdf_title(facts))
    doc.set_author(facts.validator.display)
    doc.set_creator(PRODUCER)
    doc.set_lang("fr-FR")
    doc.set_creation_date(facts.created_at)
    doc.first_page()
    _header(doc, settings)
    banner = replacement_banner(facts, settings)
    if banner:
        _banner(doc, banner)
    doc.set_font(fonts.FAMILY, "B", 15)
    doc.multi_cell(0, 8, facts.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _identity(doc, facts, settings)
    _exam(doc, facts)
    _text(doc, facts)
    _status(doc, facts)
    _recipients(doc, facts)
    return bytes(doc.output())


def to_pdfa(raw: bytes, created_at: dt.datetime) -> bytes:
    """PDF/A-1b through pikepdf.pdfa; raises DocumentError if the written bytes do not validate."""
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(raw)) as pdf:
        del pdf.Root.OpenAction
        pikepdf.pdfa.prepare(pdf, "1b")
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["xmp:MetadataDate"] = created_at.isoformat()  # pikepdf writes "now": keep builds stable
        try:
            pikepdf.pdfa.save(pdf, out, "1b", repair=False, deterministic_id=True)
        except pikepdf.pdfa.PdfaError as exc:
            raise DocumentError(f"pdf: not PDF/A-1b ({exc})") from exc
    return out.getvalue()


def render(facts: Facts, settings: SiteSettings) -> bytes:
    return to_pdfa(draw(facts, settings), facts.created_at)
