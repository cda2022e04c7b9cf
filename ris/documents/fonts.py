"""DejaVu Sans for the reports, parsed once per process.

fpdf2 re-parses a TTF for every document (~30 ms for two faces). The parsed metrics (widths, cmap,
glyph ids, descriptor) never change, so each document gets a copy of a parsed template; only the
fontTools object is fresh per document, because fpdf2 subsets it in place when it writes the PDF.
That fresh object is read from a copy of the file without the OpenType layout tables, which fpdf2
drops from the subset anyway but which fontTools would otherwise decompile for every document.
"""

from __future__ import annotations

import copy
import io
import os
import threading
from functools import cache
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from ris.documents.facts import DocumentError

FAMILY = "dejavu"
FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_UNUSED_TABLES = ("FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "kern")
SEARCH_PATH = (
    Path(__file__).parent / "fonts",
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
)
_lock = threading.Lock()


def font_file(name: str) -> Path:
    """Where a face lives: $RIS_FONT_DIR, the package, then the Debian/RedHat system folders."""
    folders = [Path(d) for d in [os.environ.get("RIS_FONT_DIR")] if d] + list(SEARCH_PATH)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise DocumentError(
        f"font {name}: not found in {', '.join(map(str, folders))}; install fonts-dejavu-core "
        "or set RIS_FONT_DIR"
    )


@cache
def _font_bytes(style: str) -> bytes:
    font = ttLib.TTFont(font_file(FACES[style]), recalcTimestamp=False)
    for tag in _UNUSED_TABLES:
        if tag in font:
            del font[tag]
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@cache
def _template(style: str) -> TTFFont:
    scratch = FPDF()
    scratch.add_font(FAMILY, style, fname=str(font_file(FACES[style])))
    return scratch.fonts[f"{FAMILY}{style}"]


def install(doc: FPDF) -> None:
    """Make DejaVu (regular, bold) available in `doc` under the family name 'dejavu'."""
    for style in FACES:
        with _lock:
            template = _template(style)
            font_bytes = _font_bytes(style)
        # Shallow: widths, cmap and glyph ids are shared read-only (a missing width only ever inserts
        # the same default value); the per-document state is reset below.
        font = copy.copy(template)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font.ttfont = ttLib.TTFont(io.BytesIO(font_bytes), recalcTimestamp=False, lazy=True)
        font.i = len(doc.fonts) + 1
        font.subset = SubsetMap(font)
        doc.fonts[font.fontkey] = font
