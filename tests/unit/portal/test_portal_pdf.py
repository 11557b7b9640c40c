"""The certificate PDF: one-line rows as cells, long ones wrapped, DejaVu embedded (only the glyphs used) with
Swedish letters intact, and the font settings that keep a PDF cheap (no per-glyph bounding-box recomputation)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from services.portal.pdf import EMPLOYER_NOTICE, _document, certificate_pdf
from services.portal.settings import PortalSettings
from services.portal.views import Row, Section, content_sections

FONT_DIR = PortalSettings().font_dir
LONG = " ".join(["Patienten har svårt att gå i trappor och behöver vila efter kortare promenader."] * 6)


def text_of(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_short_and_long_rows_keep_all_their_text_with_swedish_letters() -> None:
    data = certificate_pdf(
        font_dir=FONT_DIR,
        title="Läkarintyg för sjukpenning (LISJP)",
        header=[Section("Intyget", [Row("care_unit", "Vårdenhet", "Vårdcentralen Åby, Östermalm – Café Zoë")])],
        content=[Section("Sjukdomens konsekvenser för patienten", [Row("activity_limitation", "Aktivitet", LONG)])],
        employer_copy=True,
        printed_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    )
    text = " ".join(text_of(data).split())
    assert "Läkarintyg för sjukpenning (LISJP)" in text
    assert "Vårdcentralen Åby, Östermalm – Café Zoë" in text
    assert EMPLOYER_NOTICE in text
    assert " ".join(LONG.split()) in text  # wrapped over several lines, nothing lost
    assert "Utskrift från Mina intyg 2026-01-02 kl. 04:04" in text
    assert b"/FontFile2" in data  # DejaVu embedded, not a reader's substitute


def test_each_pdf_embeds_a_subset_without_recomputing_glyph_boxes() -> None:
    pdf = _document(FONT_DIR, "titel", "sidhuvud", "sidfot", ["Å"])
    fonts = list(pdf.fonts.values())
    assert len(fonts) == 2
    assert all(not f.ttfont.recalcBBoxes for f in fonts)  # type: ignore[union-attr]
    one = certificate_pdf(font_dir=FONT_DIR, title="Å", header=[], content=[], employer_copy=False,
                          printed_at=datetime(2026, 1, 2, tzinfo=UTC))  # fmt: skip
    many = certificate_pdf(
        font_dir=FONT_DIR, title="Å", header=[Section("Text", [Row("x", "Etikett", LONG * 3)])], content=[],
        employer_copy=False, printed_at=datetime(2026, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    assert len(one) < 40_000  # a subset of the Latin cut, not the whole font
    assert len(many) < len(one) + 40_000


def test_the_certificate_pdf_shows_each_diagnosis_with_its_swedish_name() -> None:
    body = CertificateFactory(seed=7).certificate("LISJP")
    body["content"]["diagnoses"] = [{"code": "F43.8A", "description": "Efter lång tids stress"}, {"code": "S72.00"}]
    cert = CERTIFICATE_ADAPTER.validate_python(body)
    data = certificate_pdf(
        font_dir=FONT_DIR,
        title="Läkarintyg för sjukpenning (LISJP)",
        header=[],
        content=content_sections(cert.content),
        employer_copy=False,
        printed_at=datetime(2026, 5, 28, 12, tzinfo=UTC),
    )
    text = " ".join(text_of(data).split())
    assert "F43.8A Utmattningssyndrom. Läkarens beskrivning: Efter lång tids stress" in text
    assert "S72.00 Kollumfraktur-sluten" in text
