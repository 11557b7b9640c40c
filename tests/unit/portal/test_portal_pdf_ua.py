"""The portal's PDFs are PDF/UA-1 documents in Swedish: veraPDF (the PDF/UA-1 profile, `ua1`) passes a full
certificate, an employer copy and the register extract; the text extracted from them has the Swedish names,
including one with characters outside Latin-1 (drawn with glyphs the embedded font has, never .notdef); the register
extract reads in Swedish words and Swedish time, not the stored codes.

veraPDF comes from `bash deploy/local/tools.sh` (`make tools`), which `make test` runs first."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from fpdf import FPDF
from pypdf import PdfReader

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from services.portal.domain import employer_copy
from services.portal.pdf import EMPLOYER_NOTICE, PRINTOUT_NOTICE, certificate_pdf, extract_pdf
from services.portal.settings import PortalSettings
from services.portal.views import content_of, content_sections, header_sections, type_name

ROOT = Path(__file__).resolve().parents[3]
VERAPDF_LIBS = ROOT / ".cache" / "verapdf" / "libs"
FONT_DIR = PortalSettings().font_dir
GIVEN, FAMILY = "Łukasz", "Øberg-Nguyễn"
PRINTED = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 00:30 on 3 December in Sweden
CODES = [
    "employer_copy_preview",
    "employer_copy_print",
    "RECEIVED",
    "FKASSA",
    "SUCCEEDED",
    "not_found",
    "given",
    "RECTIFICATION",
    "T23:",
    "+00:00",
]


def verapdf(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """veraPDF's PDF/UA-1 verdict per file: {name: validationResult}."""
    if not (VERAPDF_LIBS / "greenfield-apps-1.28.2.jar").exists():
        pytest.fail("veraPDF is not installed: run `bash deploy/local/tools.sh` (make tools)")
    done = subprocess.run(
        [
            "java",
            "-cp",
            f"{VERAPDF_LIBS}/*",
            "org.verapdf.apps.GreenfieldCliWrapper",
            "--flavour",
            "ua1",
            "--format",
            "json",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.stdout, done.stderr
    jobs = json.loads(done.stdout)["report"]["jobs"]
    return {Path(j["itemDetails"]["name"]).name: j["validationResult"][0] for j in jobs}


def certificate(cert_type: str) -> Any:
    body = CertificateFactory(seed=61).certificate(cert_type)
    if cert_type == "AG7804":
        body["content"]["diagnosis_to_employer"] = True
        body["content"]["diagnoses"] = [{"code": "F43.2", "description": "Anpassningsstörning"}]
        body["content"].pop("contagious_disease_leave", None)
    body["patient"]["given_name"], body["patient"]["family_name"] = GIVEN, FAMILY
    body["content"]["activity_limitation"] = "Klarar inte att gå i trappor eller lyfta. " * 80  # over a page
    return CERTIFICATE_ADAPTER.validate_python(body)


def full_pdf() -> bytes:
    cert = certificate("LISJP")
    return certificate_pdf(
        font_dir=FONT_DIR,
        title=type_name(cert.type),
        header=header_sections(cert),
        content=content_sections(cert.content),
        employer_copy=False,
        printed_at=PRINTED,
    )


def employer_pdf() -> bytes:
    """An AG7804 employer copy without the diagnosis the patient wanted passed on (the citizen left it out)."""
    cert = certificate("AG7804")
    content, left_out = employer_copy(cert.type, cert.content.model_dump(mode="json"), ["diagnoses"])
    assert left_out
    return certificate_pdf(
        font_dir=FONT_DIR,
        title=type_name(cert.type),
        header=header_sections(cert),
        content=content_sections(content_of(cert.type, content)),
        employer_copy=True,
        printed_at=PRINTED,
    )


EXTRACT: dict[str, Any] = {
    "created_at": PRINTED.isoformat(),
    "person": {"personnummer": "199001012389", "given_name": GIVEN, "family_name": FAMILY},
    "consent": {"history": [{"at": "2026-12-01T07:00:00+00:00", "action": "given", "text_version": "2"}]},
    "certificates": [
        {
            "archived": True,
            "replaced_by": None,
            "received_at": "2026-12-01T08:00:00+00:00",
            "document": {
                "type": "LISJP",
                "id": "c-1",
                "signed_at": "2026-12-01T07:59:00+00:00",
                "care_unit": {"name": "Sankt Görans sjukhus"},
            },
        }
    ],
    "status_history": [
        {
            "certificate_id": "c-1",
            "party": "Sankt Görans sjukhus",
            "state": "RECEIVED",
            "detail": None,
            "at": "2026-12-01T08:00:00+00:00",
        },
        {
            "certificate_id": "c-1",
            "party": "FKASSA",
            "state": "SENT",
            "detail": None,
            "at": "2026-12-01T23:30:00+00:00",
        },
    ],
    "dispatches": [
        {
            "certificate_id": "c-1",
            "recipient_id": "FKASSA",
            "state": "SUCCEEDED",
            "requested_at": "2026-12-01T23:29:00+00:00",
            "outcome_at": "2026-12-01T23:30:00+00:00",
            "reason": None,
        }
    ],
    "access_log": [
        {
            "certificate_id": "c-1",
            "action": "employer_copy_preview",
            "outcome": "ok",
            "at": "2026-12-01T23:31:00+00:00",
        },
        {"certificate_id": "c-1", "action": "employer_copy_print", "outcome": "ok", "at": "2026-12-01T23:32:00+00:00"},
        {"certificate_id": "c-9", "action": "print", "outcome": "not_found", "at": "2026-12-01T23:33:00+00:00"},
        {
            "certificate_id": "c-1",
            "action": "operator_dlq_replay",
            "outcome": "ok",
            "at": "2026-12-01T23:35:00+00:00",
            "actor": "anna.drift",
        },
    ],
    "retention": {
        "held_retention_days": 365,
        "text": "Intyg som kommer när du inte har gett samtycke sparas i 365 dagar utan att visas.",
        "older_certificates_removed_at": "2026-11-01T10:00:00+00:00",
    },
    "requests": [
        {
            "id": 1,
            "kind": "RECTIFICATION",
            "certificate_id": "c-1",
            "message": "Fel adress.",
            "at": "2026-12-01T23:34:00+00:00",
        }
    ],
}


def register_pdf() -> bytes:
    return extract_pdf(font_dir=FONT_DIR, name=f"{GIVEN} {FAMILY}", extract=EXTRACT, printed_at=PRINTED)


def text_of(data: bytes) -> str:
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pdf-ua")
    made = {"full.pdf": full_pdf(), "employer.pdf": employer_pdf(), "extract.pdf": register_pdf()}
    plain = FPDF()  # an untagged PDF: what veraPDF must refuse (the check can fail)
    plain.add_page()
    plain.set_font("helvetica", size=12)
    plain.cell(0, 10, "Intyg")
    made["untagged.pdf"] = bytes(plain.output())
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in made}


def test_verapdf_finds_every_pdf_pdf_ua_1_compliant_and_refuses_an_untagged_one(pdfs: dict[str, Path]) -> None:
    results = verapdf(list(pdfs.values()))
    for name in ("full.pdf", "employer.pdf", "extract.pdf"):
        result = results[name]
        assert result["profileName"] == "PDF/UA-1 validation profile"
        failed = [(r["clause"], r["description"]) for r in result["details"]["ruleSummaries"]]
        assert result["compliant"], (name, failed)
        assert result["details"]["passedChecks"] > 100
    assert not results["untagged.pdf"]["compliant"]


def test_the_document_is_swedish_tagged_and_titled(pdfs: dict[str, Path]) -> None:
    for name in ("full.pdf", "employer.pdf", "extract.pdf"):
        reader = PdfReader(pdfs[name])
        root: Any = reader.trailer["/Root"]
        assert root["/Lang"] == "sv"
        assert bool(root["/MarkInfo"]["/Marked"])
        assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
        assert "/StructTreeRoot" in root
        assert b"<pdfuaid:part>1</pdfuaid:part>" in root["/Metadata"].get_data()


def test_certificate_pdf_has_the_form_header_sections_question_numbers_and_pages(pdfs: dict[str, Path]) -> None:
    reader = PdfReader(pdfs["full.pdf"])
    assert len(reader.pages) >= 2  # the long activity limitation runs over a page
    text = text_of(pdfs["full.pdf"].read_bytes())
    cert = certificate("LISJP")
    assert f"Läkarintyg för sjukpenning (LISJP) – Intyg – Intygs-id {cert.id}" in text  # running header
    assert PRINTOUT_NOTICE in text
    assert f"Sida 1 av {len(reader.pages)}" in text
    assert f"Sida {len(reader.pages)} av {len(reader.pages)}" in text
    assert "Utskrift från Mina intyg 2026-12-03 kl. 00:30" in text
    for expected in (
        "Utfärdare",
        cert.issuer.name,
        "Vårdenhet",
        cert.care_unit.name,
        "Vårdgivare",
        "1. ",
        "28. Sysselsättning",
        "6. Huvuddiagnos",
        "35. Funktionsnedsättning",
        "17. Aktivitetsbegränsning",
        "32. ",
        "39. Prognos",
        "40. Arbetslivsinriktade åtgärder",
    ):
        assert expected in text, expected
    digits = cert.patient.personnummer.replace("-", "")
    assert f"{digits[:8]}-{digits[8:]}" in text
    assert EMPLOYER_NOTICE not in text


def test_employer_copy_says_what_it_is_and_that_something_was_left_out(pdfs: dict[str, Path]) -> None:
    text = text_of(pdfs["employer.pdf"].read_bytes())
    assert "Anpassat intyg för arbetsgivaren" in text
    assert EMPLOYER_NOTICE in text
    assert PRINTOUT_NOTICE in text
    assert "100. Diagnosen förmedlas till arbetsgivaren" in text
    assert "F43.2" not in text
    assert "Anpassningsstörning" not in text


def test_names_outside_latin_1_are_extracted_and_drawn_with_real_glyphs(pdfs: dict[str, Path]) -> None:
    for name in ("full.pdf", "employer.pdf", "extract.pdf"):
        text = text_of(pdfs[name].read_bytes())
        assert f"{GIVEN} {FAMILY}" in text, name
        assert "\ufffd" not in text
        reader = PdfReader(pdfs[name])
        glyphs: set[int] = set()
        for page in reader.pages:
            resources: Any = page["/Resources"]
            for font in resources["/Font"].values():
                descendant = font.get_object()["/DescendantFonts"][0].get_object()
                program = descendant["/FontDescriptor"]["/FontFile2"].get_data()
                glyphs |= set(TTFont(io.BytesIO(program)).getBestCmap() or {})
        assert {ord(c) for c in "ŁØễ"} <= glyphs, name
        missing = {c for c in text if not c.isspace() and ord(c) not in glyphs}
        assert not missing, (name, missing)  # every character shown is in the embedded subset: no .notdef box


def test_a_character_dejavu_lacks_is_replaced_visibly_not_dropped() -> None:
    cert = certificate("LISJP")
    body = cert.model_dump(mode="json")
    body["patient"]["family_name"] = "Øberg 李"  # CJK: not in DejaVu Sans
    odd = CERTIFICATE_ADAPTER.validate_python(body)
    data = certificate_pdf(
        font_dir=FONT_DIR,
        title="Intyg",
        header=header_sections(odd),
        content=[],
        employer_copy=False,
        printed_at=PRINTED,
    )
    assert "Łukasz Øberg \ufffd" in text_of(data)


def test_register_extract_reads_in_swedish_words_and_swedish_time(pdfs: dict[str, Path]) -> None:
    text = text_of(pdfs["extract.pdf"].read_bytes())
    for expected in (
        "Personnummer: 19900101-2389",
        "2026-12-01 kl. 08:00: Samtycke givet",
        "intyg c-1 mottaget (Sankt Görans sjukhus)",
        "2026-12-02 kl. 00:30: intyg c-1 skickat (Försäkringskassan)",
        "till Försäkringskassan: skickat",
        "Förhandsgranskat anpassat intyg för arbetsgivaren",
        "Skrivit ut anpassat intyg för arbetsgivaren",
        "Nekad (intyget hittades inte)",
        "Begäran om rättelse, intyg c-1: Fel adress.",
        "arkiverat",
        "Hur länge intyg sparas",
        "sparas i 365 dagar",
        "togs bort 2026-11-01 kl. 11:00",
        "behandlades på nytt efter ett tekniskt fel, intyg c-1, av driftpersonal (anna.drift)",
    ):
        assert expected in text, expected
    for code in CODES:
        assert code not in text, code
