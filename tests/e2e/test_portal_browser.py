"""The portal in a real browser (Debian's Chromium driven by Playwright, at a phone's 360 px width), against the
identity-provider simulator, the consent service with its gate, Kafka and PostgreSQL:

login → consent → list → open → PDF → employer copy without the diagnosis → send → "Skickat" after the outcome
(the test plays dispatch) → archive → restore → withdraw consent → data gone → consent again → data back.

Every page is screenshotted to tests/e2e/artifacts/, checked by axe-core (no violations) and for horizontal
overflow at 360 px."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from fastapi import FastAPI
from playwright.async_api import BrowserContext, Page, async_playwright
from pypdf import PdfReader

from deploy.simulators.idp.app import create_app as create_idp
from deploy.simulators.idp.settings import IdpsimSettings
from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import encode, new_envelope
from schemas.events import CertificateIssued, DispatchSucceeded
from schemas.topics import DISPATCH_OUTCOMES, INTAKE_CERTIFICATES
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from services.portal.app import create_app as create_portal
from services.portal.settings import PortalSettings
from tests.harness import delete_topics_of, drop_schema, eventually, free_port, new_unique, running

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
NOTICE = "Detta är en anpassad utskrift. Viss information i intyget har valts bort."


async def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await eventually(_started(server), timeout=60, what=f"server on port {port}")
    return server, task


def _started(server: uvicorn.Server) -> Any:
    async def check() -> bool:
        return server.started

    return check


@pytest.fixture
def e2e_overrides() -> dict[str, Any]:
    """Portal settings a test changes (the idle-timeout test shortens the timeout)."""
    return {}


@pytest.fixture
async def system(tmp_path: Path, e2e_overrides: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """IdP and portal on free ports, consent in-process, own topics and schemas; torn down afterwards."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: deploy/local/bootstrap.sh installs Debian's chromium")
    unique = new_unique()
    base = ServiceSettings()
    prefix = f"e2e{unique}."
    idp_port, portal_port = free_port(), free_port()
    idp_url, portal_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{portal_port}"
    idp = create_idp(IdpsimSettings(issuer=idp_url, environment="test", log_json=False,
                                    allow_loopback_redirects=True))  # fmt: skip
    consent_settings = ConsentSettings(db_schema=f"e2e_{unique}_consent", topic_prefix=prefix, environment="test",
                                       log_json=False)  # fmt: skip
    portal_settings = PortalSettings(db_schema=f"e2e_{unique}_portal", topic_prefix=prefix, environment="test",
                                     log_json=False, public_origin=portal_url, oidc_issuer=idp_url,
                                     consent_url="http://consent", **e2e_overrides)  # fmt: skip
    await ensure_topics(portal_settings, [INTAKE_CERTIFICATES, DISPATCH_OUTCOMES])
    producer = make_producer(portal_settings, client_id="e2e")
    await producer.start()
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        async with running(create_consent(consent_settings)) as consent:
            portal = create_portal(portal_settings, consent_transport=httpx.ASGITransport(app=consent))
            servers.append(await serve(idp, idp_port))
            servers.append(await serve(portal, portal_port))
            # A pool of the test's own on the portal's schema (the portal migrated it on start).
            pool = await create_pool(portal_settings.database_url, portal_settings.db_schema, application="e2e")
            try:
                yield {"portal_url": portal_url, "idp_url": idp_url, "settings": portal_settings, "producer": producer,
                       "pool": pool}  # fmt: skip
            finally:
                await pool.close()
            for server, task in reversed(servers):
                server.should_exit = True
                await task
    finally:
        await producer.stop()
        await delete_topics_of(base.kafka_bootstrap_servers, unique)
        for schema in (consent_settings.db_schema, portal_settings.db_schema):
            await drop_schema(base.database_url, schema)


class Browser:
    """One page at 360 px: screenshots, axe-core and an overflow check on every page it visits."""

    def __init__(self, page: Page, context: BrowserContext) -> None:
        self.page = page
        self.context = context
        self.axe = Axe()
        self.shots = 0

    async def check(self, name: str) -> None:
        self.shots += 1
        await self.page.screenshot(path=str(ARTIFACTS / f"{self.shots:02d}-{name}.png"), full_page=True)
        results = await self.axe.run(self.page)
        assert results.violations_count == 0, f"{name}: {results.generate_report()}"
        overflow = await self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow} px wider than 360"

    async def pdf_text(self, href: str) -> str:
        response = await self.context.request.get(href)
        assert response.status == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["cache-control"] == "no-store"
        return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(await response.body())).pages)


async def test_citizen_journey_in_chromium(system: dict[str, Any], tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    settings: PortalSettings = system["settings"]
    url = system["portal_url"]
    person = CertificateFactory().persons[0]
    ref = citizen_ref(person.personnummer, settings.citizen_ref_key.get_secret_value())
    document = CertificateFactory(seed=42).certificate("LISJP", person=person)
    certificate = CERTIFICATE_ADAPTER.validate_python(document)
    diagnosis = certificate.content.diagnoses[0].code if certificate.content.diagnoses else None
    assert diagnosis
    issued = CertificateIssued(citizen_ref=ref, certificate=certificate, test_patient=False,
                               received_at=datetime.now(UTC))  # fmt: skip
    envelope = new_envelope(issued, source="e2e", time=datetime.now(UTC), correlation_id="e2e")
    await system["producer"].send_and_wait(settings.topic(INTAKE_CERTIFICATES.name), encode(envelope),
                                           key=ref.encode())  # fmt: skip

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 360, "height": 780}, locale="sv-SE",
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            b = Browser(page, context)
            await page.goto(url + "/")
            await b.check("start")
            await page.get_by_role("link", name="Logga in med e-legitimation").click()
            await page.wait_for_url(f"{system['idp_url']}/**")
            await page.fill("#annat-personnummer", person.personnummer)
            await page.select_option("#acr", "loa3")
            await page.get_by_role("button", name="Legitimera").click()
            await page.wait_for_url(f"{url}/samtycke")
            await b.check("samtycke")
            await page.get_by_role("button", name="Jag ger mitt samtycke").click()
            await page.wait_for_url(f"{url}/intyg")
            await reload_until(page, lambda: page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")))
            await b.check("mina-intyg")

            await page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")).first.click()
            await page.wait_for_url(f"{url}/intyg/{certificate.id}")
            await b.check("intyg")
            await page.get_by_role("link", name="Skriv ut / Spara PDF").click()
            await b.check("skriv-ut")
            full = await b.pdf_text(f"{url}/intyg/{certificate.id}/pdf")
            assert diagnosis in full
            assert certificate.care_unit.name in full
            await page.goto(f"{url}/intyg/{certificate.id}")
            await page.get_by_role("link", name="Anpassa intyget för arbetsgivaren").click()
            await b.check("anpassa")
            preview = await page.locator(".preview").inner_text()
            assert NOTICE in preview
            assert diagnosis not in preview
            employer = await b.pdf_text(f"{url}/intyg/{certificate.id}/anpassa/pdf")
            assert NOTICE in employer
            assert diagnosis not in employer

            await page.goto(f"{url}/intyg/{certificate.id}")
            await page.get_by_role("link", name="Skicka till Försäkringskassan").click()
            await b.check("skicka")
            await page.get_by_role("button", name="Skicka intyget till Försäkringskassan").click()
            await page.wait_for_url(f"{url}/intyg/{certificate.id}?skickat=1")
            assert "Skickas…" in await page.locator("main").inner_text()
            await b.check("skickas")
            key = await system["pool"].fetchval("SELECT idempotency_key FROM dispatches WHERE certificate_id = $1",
                                                certificate.id)  # fmt: skip
            succeeded = DispatchSucceeded(idempotency_key=key, certificate_id=certificate.id, recipient_id="FKASSA",
                                          citizen_ref=ref, delivered_at=datetime.now(UTC))  # fmt: skip
            outcome = new_envelope(succeeded, source="e2e-dispatch", time=datetime.now(UTC), correlation_id="e2e")
            await system["producer"].send_and_wait(settings.topic(DISPATCH_OUTCOMES.name), encode(outcome),
                                                   key=certificate.id.encode())  # fmt: skip
            await reload_until(page, lambda: page.get_by_text("Skickat till Försäkringskassan").first)
            await b.check("skickat")

            await page.get_by_role("button", name="Arkivera").click()
            await page.wait_for_url(f"{url}/intyg?arkiverat=1")
            assert await page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")).count() == 0
            await page.get_by_role("link", name="Arkiverade intyg").first.click()
            await b.check("arkiverade")
            await page.get_by_role("button", name=re.compile("^Återställ")).click()
            await page.wait_for_url(f"{url}/intyg/{certificate.id}")
            await page.goto(f"{url}/intyg")
            assert await page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")).count() == 1

            await page.goto(f"{url}/om-dina-uppgifter")
            await b.check("om-dina-uppgifter")
            await page.goto(f"{url}/hjalp")
            await b.check("hjalp")
            await page.goto(f"{url}/installningar")
            await b.check("installningar")
            await page.get_by_role("button", name="Återkalla mitt samtycke").click()
            await page.wait_for_url(f"{url}/samtycke?aterkallat=1")
            await b.check("aterkallat")
            await page.goto(f"{url}/intyg")
            assert page.url == f"{url}/samtycke"
            left = await system["pool"].fetchval("SELECT count(*) FROM certificates WHERE citizen_ref = $1", ref)
            assert left == 0

            await page.get_by_role("button", name="Jag ger mitt samtycke").click()
            await page.wait_for_url(f"{url}/intyg")
            await reload_until(page, lambda: page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")))
            await b.check("intyg-tillbaka")
            await page.get_by_role("button", name="Logga ut").click()
            await page.wait_for_url(f"{url}/")
            await b.check("utloggad")
            await page.goto(f"{url}/intyg")
            assert "/?inloggning=kravs" in page.url
        finally:
            await context.close()


async def log_in_as(page: Page, url: str, idp_url: str, personnummer: str) -> None:
    await page.goto(url + "/login")
    await page.wait_for_url(f"{idp_url}/**")
    await page.fill("#annat-personnummer", personnummer)
    await page.get_by_role("button", name="Legitimera").click()
    await page.wait_for_url(f"{url}/samtycke")


@pytest.mark.parametrize("e2e_overrides", [{"session_idle_seconds": 60, "session_warning_seconds": 55}])
async def test_idle_warning_and_staying_logged_in(system: dict[str, Any], tmp_path: Path) -> None:
    """The warning appears before the idle timeout; "Fortsätt vara inloggad" extends the session on the server."""
    url = system["portal_url"]
    person = CertificateFactory().persons[1]
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 360, "height": 780}, locale="sv-SE",
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await log_in_as(page, url, system["idp_url"], person.personnummer)
            warning = page.get_by_role("alertdialog", name="Du loggas snart ut")
            await warning.wait_for(state="visible", timeout=20_000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "idle-warning.png"))
            results = await Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            before = await system["pool"].fetchval("SELECT max(last_seen) FROM sessions WHERE kind = 'AUTHENTICATED'")
            await page.get_by_role("button", name="Fortsätt vara inloggad").click()
            await warning.wait_for(state="hidden", timeout=10_000)
            after = await system["pool"].fetchval("SELECT max(last_seen) FROM sessions WHERE kind = 'AUTHENTICATED'")
            assert after > before
        finally:
            await context.close()


async def reload_until(page: Page, locate: Any, timeout: float = 60.0) -> None:
    """Reload the page until what `locate()` finds is there (the read model catches up asynchronously)."""

    async def present() -> bool:
        if await locate().count() > 0:
            return True
        with contextlib.suppress(Exception):
            await page.reload()
        return bool(await locate().count() > 0)

    await eventually(present, timeout=timeout, interval=0.5, what="the page to show it")
