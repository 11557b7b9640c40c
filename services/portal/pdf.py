"""Certificates and the register extract as tagged, accessible PDF (PDF/UA-1, language `sv`), made with fpdf2.

fpdf2 writes the structure tree, the marked-content bookkeeping (MCIDs, the parent tree), /Lang, /MarkInfo and the
XMP packet; it does not tag text by itself, so every piece of text here is drawn inside a tagged block (`H1`, `H2`,
`P`) and the running header and footer are pagination artifacts. Page breaks are made here, between lines, never
inside a tagged block (fpdf2's automatic break would split one marked sequence over two pages). The text is set in
DejaVu (Debian's fonts-dejavu-core), embedded as a subset, so names outside Latin-1 print with real glyphs; a
character DejaVu lacks is replaced by U+FFFD (visible) rather than left to a .notdef glyph. veraPDF checks the
result against PDF/UA-1 in tests/unit/portal/test_portal_pdf_ua.py.
"""

from __future__ import annotations

import functools
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast
from xml.sax.saxutils import escape

from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import TTFFont
from fpdf.prefs import ViewerPreferences

from services.kit.swedish import (
    ACCESS_ACTIONS,
    CONSENT_ACTIONS,
    DISPATCH_STATES,
    OUTCOMES,
    RECIPIENTS,
    REQUEST_KINDS,
    STATES,
    fmt_personnummer,
    fmt_time,
    word,
)
from services.portal.views import Section

LANGUAGE = "sv"
PRINTOUT_NOTICE = (
    "Detta är en utskrift av ett elektroniskt intyg. Intyget har signerats elektroniskt av intygsutfärdaren."
)
EMPLOYER_NOTICE = "Detta är en anpassad utskrift. Viss information i intyget har valts bort."
REPLACEMENT = "\ufffd"

# The code points cut out of DejaVu once per process: the Latin scripts (Latin-1, Extended-A and -B, and Extended
# Additional, where Vietnamese lives once the text is NFC) and the typographic punctuation. DejaVu has thousands of
# glyphs; fpdf2 parses the font for every PDF, and the whole file took ~0.6 s. A text with other characters that
# DejaVu has (Greek, Cyrillic, combining marks, ...) gets a cut with those added, made once and kept (`_fonts`).
_BASE = frozenset(
    [
        *range(0x20, 0x7F),
        *range(0xA0, 0x250),
        *range(0x1E00, 0x1F00),
        *range(0x2010, 0x2028),
        0x2030,
        0x2039,
        0x203A,
        0x20AC,
        0xFFFD,
    ]
)
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FAMILY = "DejaVu"


@functools.cache
def _coverage(font_dir: str) -> frozenset[int]:
    """The code points both DejaVu faces have."""
    covered: frozenset[int] | None = None
    for name in FONT_FILES.values():
        with TTFont(str(Path(font_dir) / name), lazy=True) as font:
            cmap = frozenset(font.getBestCmap())
        covered = cmap if covered is None else covered & cmap
    return covered or frozenset()


def latin_fonts(font_dir: str) -> dict[str, str]:
    """DejaVu cut down to the base ranges (made once per process)."""
    return _fonts(font_dir, frozenset())


@functools.lru_cache(maxsize=16)
def _fonts(font_dir: str, extra: frozenset[int]) -> dict[str, str]:
    """DejaVu cut to the base ranges plus `extra` (fontTools' subsetter), in a private temporary directory (never
    a shared path another local user could have planted a file in)."""
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
        subsetter.populate(unicodes=sorted((_BASE | extra) & _coverage(font_dir)))
        subsetter.subset(font)
        subset.save_font(font, str(path), options)
        paths[style] = str(path)
    return paths


def printable(text: str, covered: frozenset[int]) -> str:
    """NFC text with every character the font lacks replaced by U+FFFD (and control characters by spaces)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(
        ch if ord(ch) in covered else ("\n" if ch == "\n" else " " if ch < " " else REPLACEMENT) for ch in text
    )


class _Document(FPDF):
    """An A4 page with a running header and footer as artifacts, and text only in tagged blocks."""

    running_header = ""
    footer_text = ""

    @contextmanager
    def tagged(self, struct_type: str) -> Iterator[None]:
        """Draw inside one marked-content sequence, a structure element of `struct_type` (H1, H2, P)."""
        mcid = self.struct_builder.next_mcid_for_page(self.page)
        self._add_marked_content(struct_type=f"/{struct_type}", mcid=mcid)
        self._out(f"/{struct_type} <</MCID {mcid}>> BDC")
        yield
        self._out("EMC")

    @contextmanager
    def artifact(self, kind: str) -> Iterator[None]:
        """Draw something that is not content (running header, footer, page numbers)."""
        self._out(f"/Artifact <</Type /Pagination /Subtype /{kind}>> BDC")
        yield
        self._out("EMC")

    def header(self) -> None:
        with self.artifact("Header"):
            self.set_font(FAMILY, size=8)
            self.set_text_color(80)
            self.cell(0, 5, self.running_header, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_draw_color(160)
            self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
            self.set_text_color(0)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        with self.artifact("Footer"):
            self.set_font(FAMILY, size=8)
            self.cell(0, 10, f"{self.footer_text}   Sida {self.page_no()} av {{nb}}", align="C")

    def block(
        self, struct_type: str, text: str, *, size: float, bold: bool = False, height: float = 5, notice: bool = False
    ) -> None:
        """A paragraph or heading at the left margin, broken over pages between lines (one tagged block a page).

        One cell when it fits on a line (fpdf2's line breaking is the costly part of laying out a page)."""
        self.set_font(FAMILY, "B" if bold else "", size)
        if notice:
            self.set_fill_color(255, 243, 205)
        one_line = "\n" not in text and self.get_string_width(text) < self.epw - 2 * self.c_margin
        lines: list[str] = (
            [text]
            if one_line
            else cast(
                "list[str]",
                self.multi_cell(0, height, text, dry_run=True, output=MethodReturnValue.LINES, padding=0),
            )
        )
        border: Literal[0, 1] = 1 if notice else 0
        while lines:
            room = int((self.page_break_trigger - self.y) // height)
            if room <= 0:
                self.add_page()
                continue
            if struct_type.startswith("H") and room < 3 and len(lines) <= room:
                self.add_page()  # a heading is not left alone at the foot of a page
                continue
            part, lines = lines[:room], lines[room:]
            with self.tagged(struct_type):
                if len(part) == 1:
                    self.cell(0, height, part[0], border=border, fill=notice, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                else:
                    self.multi_cell(
                        0, height, "\n".join(part), border=border, fill=notice, new_x=XPos.LMARGIN, new_y=YPos.NEXT
                    )


def _document(font_dir: str, title: str, running_header: str, footer: str, texts: Sequence[str]) -> _Document:
    """A document whose fonts cover every character of `texts`, with PDF/UA's catalogue and metadata."""
    covered = _coverage(font_dir)
    wanted = frozenset(ord(c) for t in texts for c in unicodedata.normalize("NFC", t)) & covered
    pdf = _Document(format="A4")
    pdf.running_header = printable(running_header, covered)
    pdf.footer_text = printable(footer, covered)
    pdf.set_title(title)
    pdf.set_lang(LANGUAGE)
    pdf.set_creator("Mina intyg")
    pdf.set_display_mode("fullwidth")
    pdf.viewer_preferences = ViewerPreferences(display_doc_title=True)
    pdf.set_xmp_metadata(_xmp(title))
    for style, path in _fonts(font_dir, wanted - _BASE).items():
        pdf.add_font(FAMILY, style, path)
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont):
            # fpdf2 subsets the font for each PDF; recomputing every kept glyph's bounding box on saving the subset
            # (fontTools' default) expanded and recompiled each glyph, a third of a PDF's CPU. Subsetting only drops
            # glyphs, so the source's boxes and maxima stay valid.
            font.ttfont.recalcBBoxes = False
    pdf.set_auto_page_break(auto=False, margin=20)
    pdf.add_page()
    return pdf


def _xmp(title: str) -> str:
    """The XMP packet PDF/UA-1 asks for: the PDF/UA identification, the title and the language."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        "<pdfuaid:part>1</pdfuaid:part>"
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>'
        f"<dc:language><rdf:Bag><rdf:li>{LANGUAGE}</rdf:li></rdf:Bag></dc:language>"
        "<xmp:CreatorTool>Mina intyg</xmp:CreatorTool>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


class _Writer:
    """Headings and paragraphs in the document's fonts, every text made printable first."""

    def __init__(self, pdf: _Document, covered: frozenset[int]) -> None:
        self.pdf = pdf
        self.covered = covered

    def title(self, text: str) -> None:
        self.pdf.block("H1", printable(text, self.covered), size=16, bold=True, height=8)

    def heading(self, text: str) -> None:
        self.pdf.ln(3)
        self.pdf.block("H2", printable(text, self.covered), size=12, bold=True, height=7)

    def label(self, text: str) -> None:
        self.pdf.block("P", printable(text, self.covered), size=9, bold=True)

    def text(self, text: str, *, size: float = 10) -> None:
        self.pdf.block("P", printable(text, self.covered), size=size)

    def notice(self, text: str) -> None:
        self.pdf.ln(2)
        self.pdf.block("P", printable(text, self.covered), size=10, bold=True, height=6, notice=True)

    def sections(self, sections: Sequence[Section]) -> None:
        for section in sections:
            self.heading(section.title)
            for row in section.rows:
                self.label(f"{row.question}. {row.label}" if row.question else row.label)
                self.text(row.value)


def _texts(sections: Sequence[Section]) -> list[str]:
    return [t for s in sections for t in (s.title, *(x for r in s.rows for x in (r.label, r.value)))]


def certificate_pdf(
    *,
    font_dir: str,
    title: str,
    header: Sequence[Section],
    content: Sequence[Section],
    employer_copy: bool,
    printed_at: datetime,
    certificate_id: str = "",
) -> bytes:
    """The certificate (or its employer copy) as PDF bytes: type and id in the running header, the issuer and care
    unit, the form's sections with their question numbers, and the printout notice (and the employer-copy one)."""
    certificate_id = certificate_id or next(
        (r.value for s in header for r in s.rows if r.field == "id"), ""
    )  # the header sections carry it
    kind = "Anpassat intyg för arbetsgivaren" if employer_copy else "Intyg"
    running = f"{title} – {kind} – Intygs-id {certificate_id}" if certificate_id else f"{title} – {kind}"
    footer = f"Utskrift från Mina intyg {fmt_time(printed_at)}"
    pdf = _document(font_dir, title, running, footer, [title, running, *_texts(header), *_texts(content)])
    out = _Writer(pdf, _coverage(font_dir))
    out.title(title)
    out.text(PRINTOUT_NOTICE, size=9)
    if employer_copy:
        out.notice(EMPLOYER_NOTICE)
    out.sections(header)
    out.sections(content)
    return bytes(pdf.output())


def extract_pdf(*, font_dir: str, name: str, extract: dict[str, Any], printed_at: datetime) -> bytes:
    """The register extract (everything held about the citizen) as PDF, in Swedish words and Swedish time."""
    person = extract.get("person", {})
    lines: list[tuple[str, str]] = []  # (kind, text): laid out after the fonts are chosen for all of it

    def heading(text: str) -> None:
        lines.append(("H2", text))

    def line(text: str) -> None:
        lines.append(("P", text))

    heading("Om dig")
    line(f"Namn: {name}")
    if person.get("personnummer"):
        line(f"Personnummer: {fmt_personnummer(person['personnummer'])}")
    heading("Samtycke")
    consent_history = extract.get("consent", {}).get("history", [])
    for h in consent_history:
        line(f"{fmt_time(h['at'])}: {word(CONSENT_ACTIONS, h['action'])} (samtyckestext version {h['text_version']})")
    if not consent_history:
        line("Ingen samtyckeshistorik.")
    retention = extract.get("retention") or {}
    if retention.get("text"):
        heading("Hur länge intyg sparas")
        line(retention["text"])
        if retention.get("older_certificates_removed_at"):
            line(
                f"Intyg som kom innan du gav samtycke togs bort {fmt_time(retention['older_certificates_removed_at'])}"
                "; de kan finnas kvar hos vårdenheten."
            )
    certificates = extract.get("certificates", [])
    heading(f"Intyg ({len(certificates)})")
    for c in certificates:
        doc = c["document"]
        line(
            f"{doc['type']} {doc['id']}, signerat {fmt_time(doc['signed_at'])}, {doc['care_unit']['name']}"
            + (", arkiverat" if c.get("archived") else "")
            + (f", ersatt av {c['replaced_by']}" if c.get("replaced_by") else "")
        )
    heading("Händelser")
    for h in extract.get("status_history", []):
        state = word(STATES, h["state"])
        party = word(RECIPIENTS, h["party"])
        line(f"{fmt_time(h['at'])}: intyg {h['certificate_id']} {state.lower()} ({party})")
    heading("Skickade intyg")
    for d in extract.get("dispatches", []):
        line(
            f"{fmt_time(d['requested_at'])}: intyg {d['certificate_id']} till {word(RECIPIENTS, d['recipient_id'])}:"
            f" {word(DISPATCH_STATES, d['state']).lower()}"
        )
    heading("Åtkomstlogg")
    for a in extract.get("access_log", []):
        about = f", intyg {a['certificate_id']}" if a.get("certificate_id") else ""
        who = ""
        if a.get("actor"):
            fetched = a["action"] == "fetched"  # a party (Försäkringskassan) fetched it, else an operator acted
            who = f", av {word(RECIPIENTS, a['actor'])}" if fetched else f", av driftpersonal ({a['actor']})"
        line(f"{fmt_time(a['at'])}: {word(ACCESS_ACTIONS, a['action'])}{about}{who} ({word(OUTCOMES, a['outcome'])})")
    heading("Begäranden om rättelse och spärr")
    requests = extract.get("requests", [])
    for r in requests:
        about = f", intyg {r['certificate_id']}" if r.get("certificate_id") else ""
        line(f"{fmt_time(r['at'])}: {word(REQUEST_KINDS, r['kind'])}{about}: {r['message']}")
    if not requests:
        line("Inga begäranden.")

    title = "Utdrag ur Mina intyg"
    pdf = _document(
        font_dir,
        title,
        f"{title} – {name}",
        f"Utdrag ur Mina intyg {fmt_time(printed_at)}",
        [name, *(t for _, t in lines)],
    )
    out = _Writer(pdf, _coverage(font_dir))
    out.title("Utdrag – uppgifter om dig i Mina intyg")
    out.text(f"Utdraget skapades {fmt_time(printed_at)}.")
    for kind, text in lines:
        if kind == "H2":
            out.heading(text)
        else:
            out.text(text, size=9)
    return bytes(pdf.output())
