"""Certificates as PDF (fpdf2), in Swedish with an embedded DejaVu font so å, ä and ö render everywhere."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fontTools import subset
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from services.portal.views import Section, fmt_time

EMPLOYER_NOTICE = "Detta är en anpassad utskrift. Viss information i intyget har valts bort."


# Latin-1, Latin Extended-A, and the typographic punctuation the texts use: every Swedish (and most European) name
# and text. DejaVu has thousands of glyphs; parsing and subsetting the whole file took ~0.6 s per PDF.
_UNICODES = [*range(0x20, 0x7F), *range(0xA0, 0x180), 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
             0x2026, 0x20AC]  # fmt: skip
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


@functools.cache
def latin_fonts(font_dir: str) -> dict[str, str]:
    """DejaVu cut down to the Latin ranges once per process (fontTools' subsetter), in a private temporary
    directory (never a shared path another local user could have planted a file in)."""
    target = Path(tempfile.mkdtemp(prefix="minaintyg-fonts-"))
    paths = {}
    for style, name in FONT_FILES.items():
        path = target / name
        options = subset.Options()
        options.name_IDs = ["*"]
        options.notdef_outline = True
        # Nothing a PDF without text shaping uses, and what fpdf2 would otherwise parse and drop again for every
        # PDF: FontForge's timestamps, OpenType layout, kerning and device tables, and the TrueType hinting
        # programs (viewers rasterise embedded outlines with their own hinting).
        options.drop_tables += ["FFTM", "GPOS", "GSUB", "GDEF", "kern", "hdmx", "VDMX", "LTSH"]
        options.hinting = False
        font = subset.load_font(str(Path(font_dir) / name), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=_UNICODES)
        subsetter.subset(font)
        subset.save_font(font, str(path), options)
        paths[style] = str(path)
    return paths


class _Document(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("DejaVu", size=8)
        self.cell(0, 10, f"{self.footer_text}   Sida {self.page_no()}/{{nb}}", align="C")


def _document(font_dir: str, title: str, footer: str) -> _Document:
    pdf = _Document(format="A4")
    pdf.footer_text = footer
    pdf.set_title(title)
    pdf.set_creator("Mina intyg")
    for style, path in latin_fonts(font_dir).items():
        pdf.add_font("DejaVu", style, path)
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont):
            # fpdf2 subsets the font for each PDF; recomputing every kept glyph's bounding box on saving the subset
            # (fontTools' default) expanded and recompiled each glyph, a third of a PDF's CPU. Subsetting only drops
            # glyphs, so the source's boxes and maxima stay valid.
            font.ttfont.recalcBBoxes = False
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    return pdf


def _line(pdf: FPDF, height: float, text: str) -> None:
    """A paragraph at the left margin: one cell when it fits on a line (fpdf2's line breaking is the costly part
    of laying out a page), wrapped otherwise."""
    if "\n" not in text and pdf.get_string_width(text) < pdf.epw - 2 * pdf.c_margin:
        pdf.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _sections(pdf: FPDF, sections: Sequence[Section]) -> None:
    for section in sections:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(0, 8, section.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for row in section.rows:
            pdf.set_font("DejaVu", "B", 9)
            _line(pdf, 5, row.label)
            pdf.set_font("DejaVu", "", 10)
            _line(pdf, 5, row.value)


def certificate_pdf(
    *,
    font_dir: str,
    title: str,
    header: Sequence[Section],
    content: Sequence[Section],
    employer_copy: bool,
    printed_at: datetime,
) -> bytes:
    """The certificate (or its employer copy) as PDF bytes."""
    pdf = _document(font_dir, title, f"Utskrift från Mina intyg {fmt_time(printed_at)}")
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if employer_copy:
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 10)
        pdf.set_fill_color(255, 243, 205)
        pdf.multi_cell(0, 6, EMPLOYER_NOTICE, border=1, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _sections(pdf, header)
    _sections(pdf, content)
    return bytes(pdf.output())


def extract_pdf(*, font_dir: str, name: str, extract: dict[str, Any], printed_at: datetime) -> bytes:
    """The register extract (everything held about the citizen) as PDF."""
    pdf = _document(font_dir, "Utdrag ur Mina intyg", f"Utdrag ur Mina intyg {fmt_time(printed_at)}")
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 8, "Utdrag – uppgifter om dig i Mina intyg", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(0, 5, f"{name}, utdrag skapat {fmt_time(printed_at)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("DejaVu", "", 9)

    def line(text: str) -> None:
        pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading("Samtycke")
    for h in extract.get("consent", {}).get("history", []):
        line(f"{h['at']}: {'givet' if h['action'] == 'given' else 'återkallat'} (text {h['text_version']})")
    heading(f"Intyg ({len(extract['certificates'])})")
    for c in extract["certificates"]:
        doc = c["document"]
        line(f"{doc['type']} {doc['id']}, signerat {doc['signed_at']}, {doc['care_unit']['name']}"
             + (", arkiverat" if c["archived"] else ""))  # fmt: skip
    heading("Händelser")
    for h in extract["status_history"]:
        line(f"{h['at']}: {h['certificate_id']} {h['state']} ({h['party']})")
    heading("Skickade intyg")
    for d in extract["dispatches"]:
        line(f"{d['requested_at']}: {d['certificate_id']} till {d['recipient_id']}: {d['state']}")
    heading("Åtkomstlogg")
    for a in extract["access_log"]:
        line(f"{a['at']}: {a['action']} {a['certificate_id'] or ''} ({a['outcome']})")
    heading("Begäranden om rättelse och spärr")
    for r in extract["requests"]:
        line(f"{r['at']}: {r['kind']} {r['certificate_id'] or ''}: {r['message']}")
    return bytes(pdf.output())
