"""What the citizen reads through the running portal is Swedish: the access log page says what happened in Swedish
words (no `employer_copy_preview`, `RECEIVED`, `FKASSA`), in Swedish time; the PDFs carry the citizen's name with
characters outside Latin-1 and the register extract PDF reads in Swedish words."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from services.kit.citizen import citizen_ref
from services.portal import repo
from tests.harness import eventually
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration
CODES = ("employer_copy_preview", "employer_copy_print", "send_preview", "RECEIVED", "FKASSA", ">ok<", "not_found")


def pdf_text(data: bytes) -> str:
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


async def test_access_log_and_extract_in_swedish_with_a_name_outside_latin_1(portal: PortalHarness) -> None:
    base = portal.citizen(12)
    person = dataclasses.replace(base.person, given_name="Łukasz", family_name="Øberg-Nguyễn")
    lukasz = await portal.login(
        Citizen(person, citizen_ref(person.personnummer, portal.settings.citizen_ref_key.get_secret_value()))
    )
    cert = await portal.release(lukasz, "LISJP")

    async def listed() -> bool:
        return bool(await portal.listed(lukasz))

    await eventually(listed, what="certificate listed")
    # Försäkringskassan fetched it (services/portal/riv.py writes this row).
    await repo.log_fetched(portal.pool, lukasz.ref, [cert["id"]], "FKASSA", datetime.now(UTC))
    for path in (
        f"/intyg/{cert['id']}",
        f"/intyg/{cert['id']}/anpassa",
        f"/intyg/{cert['id']}/anpassa/pdf",
        f"/intyg/{cert['id']}/skicka",
    ):
        assert (await portal.client.get(path, headers=lukasz.cookie)).status_code == 200, path
    full = await portal.client.get(f"/intyg/{cert['id']}/pdf", headers=lukasz.cookie)
    assert "Łukasz Øberg-Nguyễn" in pdf_text(full.content)
    assert "Sida 1 av" in pdf_text(full.content)

    page = (await portal.client.get("/om-dina-uppgifter", headers=lukasz.cookie)).text
    log = page[page.index("Logg över åtkomst") :]
    for words in (
        "Läst intyget",
        "Förhandsgranskat anpassat intyg för arbetsgivaren",
        "Skrivit ut anpassat intyg för arbetsgivaren",
        "Förhandsgranskat att skicka intyget",
        "Skrivit ut intyget",
        "Genomfört",
        "Hämtat intyget från Mina intyg",
        "Försäkringskassan",
    ):
        assert words in log, words
    for code in CODES:
        assert code not in log, code
    assert re.search(r"\d{4}-\d{2}-\d{2} kl\. \d{2}:\d{2}", log)

    extract = await portal.client.get("/om-dina-uppgifter/utdrag.pdf", headers=lukasz.cookie)
    text = pdf_text(extract.content)
    assert "Łukasz Øberg-Nguyễn" in text
    digits = person.personnummer.replace("-", "")
    assert f"Personnummer: {digits[:8]}-{digits[8:]}" in text
    for words in (
        "mottaget",
        "Förhandsgranskat anpassat intyg för arbetsgivaren",
        "Läst intyget",
        "Hämtat intyget från Mina intyg",
        "av Försäkringskassan",
    ):
        assert words in text, words
    for code in ("employer_copy_preview", "RECEIVED", "FKASSA", "not_found", "+00:00"):
        assert code not in text, code
