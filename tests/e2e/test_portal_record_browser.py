"""The citizen's record stays true across withdrawal and re-consent (issue #16), in a real browser (Debian's
Chromium driven by Playwright): send to Försäkringskassan → archive → withdraw consent → consent again → the
certificate shows "Skickat" with its time (told again by dispatch from its send ledger), no send button, the archive
flag kept; the consent page says in Swedish what withdrawal keeps and how long certificates are held; the access log
is in Swedish, including an operator's action on the record with who did it.

Consent (the real gate) and dispatch run in-process, the portal and the identity-provider simulator on free ports,
the Försäkringskassan simulator as its own process; own topics and schemas."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from deploy.simulators.idp.app import create_app as create_idp
from deploy.simulators.idp.settings import IdpsimSettings
from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, INTAKE_CERTIFICATES, PORTAL_DISPATCH_REQUESTS
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from services.portal.app import create_app as create_portal
from services.portal.settings import PortalSettings
from tests.e2e.test_portal_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Browser, reload_until, serve
from tests.harness import (
    ServiceProcess,
    dead_lettered,
    delete_topics_of,
    drop_schema,
    free_port,
    new_unique,
    run_command,
    running,
    wait_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
OPERATOR = "drift.lena"


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: deploy/local/bootstrap.sh installs Debian's chromium")
    unique = new_unique()
    base = ServiceSettings()
    prefix = f"e2e{unique}."
    idp_port, portal_port = free_port(), free_port()
    idp_url, portal_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{portal_port}"
    fk_schema = f"e2e_{unique}_fk"
    fk = ServiceProcess(
        "fk-sim",
        {"FKSIM_DB_SCHEMA": fk_schema, "LOG_LEVEL": "WARNING"},
        port_env="FKSIM_PORT",
        log=tmp_path / "fk-sim.log",
    )
    idp = create_idp(IdpsimSettings(issuer=idp_url, environment="test", log_json=False, allow_loopback_redirects=True))
    common: dict[str, Any] = {"topic_prefix": prefix, "environment": "test", "log_json": False}
    consent_settings = ConsentSettings(db_schema=f"e2e_{unique}_consent", **common)
    portal_settings = PortalSettings(
        db_schema=f"e2e_{unique}_portal",
        public_origin=portal_url,
        oidc_issuer=idp_url,
        consent_url="http://consent",
        **common,
    )
    dispatch_settings = DispatchSettings(
        db_schema=f"e2e_{unique}_dispatch", fk_endpoint=fk.url, poll_seconds=0.2, **common
    )
    await ensure_topics(
        portal_settings, [INTAKE_CERTIFICATES, CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS]
    )
    producer = make_producer(portal_settings, client_id="e2e")
    await producer.start()
    await fk.start()
    servers = []
    try:
        await wait_ready(fk.url)
        async with running(create_consent(consent_settings)) as consent, running(create_dispatch(dispatch_settings)):
            portal = create_portal(portal_settings, consent_transport=httpx.ASGITransport(app=consent))
            servers.append(await serve(idp, idp_port))
            servers.append(await serve(portal, portal_port))
            pool = await create_pool(portal_settings.database_url, portal_settings.db_schema, application="e2e")
            try:
                yield {
                    "portal_url": portal_url,
                    "idp_url": idp_url,
                    "settings": portal_settings,
                    "producer": producer,
                    "pool": pool,
                    "fk_url": fk.url,
                    "dispatch": dispatch_settings,
                }
            finally:
                await pool.close()
            for server, task in reversed(servers):
                server.should_exit = True
                await task
    finally:
        fk.stop()
        await producer.stop()
        await delete_topics_of(base.kafka_bootstrap_servers, unique)
        for schema in (consent_settings.db_schema, portal_settings.db_schema, dispatch_settings.db_schema, fk_schema):
            await drop_schema(base.database_url, schema)


async def test_sent_and_archived_survive_withdrawal_and_re_consent_in_chromium(
    system: dict[str, Any], tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    settings: PortalSettings = system["settings"]
    url = system["portal_url"]
    person = next(p for p in CertificateFactory().persons if not p.test_patient)
    ref = citizen_ref(person.personnummer, settings.citizen_ref_key.get_secret_value())
    certificate = CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=1616).certificate("LISJP", person=person))
    issued = CertificateIssued(
        citizen_ref=ref, certificate=certificate, test_patient=False, received_at=datetime.now(UTC)
    )
    envelope = new_envelope(issued, source="e2e", time=datetime.now(UTC), correlation_id="e2e")
    await system["producer"].send_and_wait(settings.topic(INTAKE_CERTIFICATES.name), encode(envelope), key=ref.encode())
    page_url = f"{url}/intyg/{certificate.id}"
    sent_link = "Skicka till Försäkringskassan"

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 360, "height": 780},
            locale="sv-SE",
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            b = Browser(page, context)
            await page.goto(url + "/login")
            await page.wait_for_url(f"{system['idp_url']}/**")
            await page.fill("#annat-personnummer", person.personnummer)
            await page.select_option("#acr", "loa3")
            await page.get_by_role("button", name="Legitimera").click()
            await page.wait_for_url(f"{url}/samtycke")
            main = page.locator("main")
            consent_text = await main.inner_text()
            assert "Vad sparas när samtycket är återkallat?" in consent_text
            assert "sparas i 365 dagar" in consent_text
            assert "Vilka intyg som har skickats till Försäkringskassan och när." in consent_text
            await b.check("record-samtycke")
            await page.get_by_role("button", name="Jag ger mitt samtycke").click()
            await page.wait_for_url(f"{url}/intyg")
            await reload_until(page, lambda: page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")))

            # Send (the real dispatch delivers it to the Försäkringskassan simulator).
            await page.goto(page_url)
            await page.get_by_role("link", name=sent_link).click()
            await page.get_by_role("button", name="Skicka intyget till Försäkringskassan").click()
            await page.wait_for_url(f"{page_url}?skickat=1")
            await reload_until(page, lambda: page.get_by_text(re.compile(r"Skickat till Försäkringskassan \d{4}")))
            sent_before = await page.get_by_role("status").filter(has_text="Skickat till").inner_text()
            history_before = await page.locator(".history").inner_text()
            await b.check("record-skickat")

            # Archive.
            await page.get_by_role("button", name="Arkivera").click()
            await page.wait_for_url(f"{url}/intyg?arkiverat=1")

            # Withdraw: the portal forgets the certificate.
            await page.goto(f"{url}/installningar")
            await page.get_by_role("button", name="Återkalla mitt samtycke").click()
            await page.wait_for_url(f"{url}/samtycke?aterkallat=1")
            await b.check("record-aterkallat")
            assert await system["pool"].fetchval("SELECT count(*) FROM certificates WHERE citizen_ref = $1", ref) == 0

            # While consent is withdrawn an operator replays a dead letter about the certificate (a release of before
            # the withdrawal: dropped as stale); the replay is the operator's action on the record, in the access log.
            stale = CertificateReleased(
                citizen_ref=ref,
                certificate=certificate,
                test_patient=False,
                released_at=datetime.now(UTC),
                consent_generation=1,
            )
            released_topic = settings.topic(CONSENT_RELEASED.name)
            stale_event = new_envelope(stale, source="minaintyg/consent", time=datetime.now(UTC), correlation_id="e2e")
            await dead_lettered(system["producer"], released_topic, encode(stale_event), ref.encode(), "e2e")
            code, out = await run_command(
                "minaintyg-admin",
                "dlq",
                "replay",
                CONSENT_RELEASED.name,
                "--operator",
                OPERATOR,
                env={"MINAINTYG_TOPIC_PREFIX": settings.topic_prefix, "PORTAL_DB_SCHEMA": settings.db_schema},
            )
            assert code == 0, out
            assert "replayed 1 message(s)" in out

            # Consent again: the certificate is back as it was.
            await page.get_by_role("button", name="Jag ger mitt samtycke").click()
            await page.wait_for_url(re.compile(rf"{re.escape(url)}/intyg(\?.*)?$"))
            await page.goto(f"{url}/intyg/arkiverade")
            await reload_until(page, lambda: page.get_by_role("link", name=re.compile("Läkarintyg för sjukpenning")))
            await b.check("record-arkiverade-igen")
            await page.goto(page_url)
            await reload_until(page, lambda: page.get_by_text(re.compile(r"Skickat till Försäkringskassan \d{4}")))
            assert await page.get_by_role("status").filter(has_text="Skickat till").inner_text() == sent_before
            assert "Skickat" in await page.locator(".badges").inner_text()
            assert await page.get_by_role("link", name=sent_link).count() == 0  # sending is not offered
            assert await page.get_by_role("button", name="Återställ").count() == 1  # still archived
            history = await page.locator(".history").inner_text()
            for line in history_before.splitlines():
                assert line in history, (line, history)  # received, sent (with its time), as before
            assert "Arkiverat" in history
            await b.check("record-intyg-igen")

            # The access log, in Swedish.
            await page.goto(f"{url}/om-dina-uppgifter")
            log_text = await page.locator("table").inner_text()
            for words in (
                "Skickat intyget",
                "Arkiverat intyget",
                "Läst intyget",
                f"Driftpersonal ({OPERATOR})",
                "En händelse om intyget behandlades på nytt efter ett tekniskt fel",
            ):
                assert words in log_text, (words, log_text)
            for code_word in ("send", "archive", "read", "operator_"):
                assert not re.search(rf"\b{code_word}\b", log_text), (code_word, log_text)
            await b.check("record-om-dina-uppgifter")
        finally:
            await context.close()
    # The recipient got the certificate once, whatever happened after.
    fk_auth = {"Authorization": "Bearer dev-minaintyg-to-fk"}
    async with httpx.AsyncClient(base_url=system["fk_url"], headers=fk_auth) as fk:
        receipts = (await fk.get(f"/v1/intyg/{certificate.id}/receipts")).json()
    assert len(receipts) == 1
