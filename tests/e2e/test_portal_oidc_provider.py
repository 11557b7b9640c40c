"""The portal's login in a real browser (Debian's Chromium) against an independent, OpenID Certified provider:
panva's oidc-provider (npm, pinned in tests/oidc_provider/package-lock.json), configured the standard way for the
Swedish OpenID Connect profile and started by the test on a free loopback port.

What makes this provider a real test of the portal, unlike our own simulator: it releases the personnummer and the
names only in userinfo (claims requested by scope, OpenID Connect Core §5.4), decodes client_secret_basic per
RFC 6749 §2.3.1 (the client secret here contains `+` and `%`), publishes an issuer with a trailing slash, sends
RFC 9207's `iss`, asks for confirmation at logout and checks private_key_jwt assertions.

Cases: first login → the portal's consent page; logout ends both sessions; loa2 refused with the Swedish message;
under 16 refused; a samordningsnummer accepted; provider key rotation followed; private_key_jwt. No log line
carries a personnummer.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from joserfc.jwk import RSAKey
from playwright.async_api import BrowserContext, Page, async_playwright

from deploy.simulators.idp.persons import listed_persons
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.kit.service import app_state
from services.kit.settings import ServiceSettings
from services.portal.app import create_app as create_portal
from services.portal.deps import Portal as PortalState
from services.portal.oidc import COORDINATION_NUMBER_CLAIM, PERSONNUMMER_CLAIM, client_secret_basic
from services.portal.settings import PortalSettings
from tests.harness import eventually, free_port
from tests.oidc_provider.runner import RunningProvider, new_key, oidc_provider

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "Gx+4p%2Bq/7z%zz=="  # `+` and `%` (also a valid-looking escape): form-encoding decides whether it works
ADULT = "198507149808"
SAMORDNING = "198507749805"  # born 14 July 1985, day + 60
BASIC_CLIENT = "minaintyg-portal"
JWT_CLIENT = "minaintyg-portal-jwt"


def person(number: str, given: str, family: str, born: str, claim: str = PERSONNUMMER_CLAIM) -> dict[str, Any]:
    return {claim: number, "given_name": given, "family_name": family, "name": f"{given} {family}", "birthdate": born}


def accounts() -> dict[str, dict[str, Any]]:
    child = next(p for p in listed_persons(datetime.now(UTC).date()) if p.note == "Under 16 år")
    return {
        "vuxen": person(ADULT, "Åsa", "Öberg", "1985-07-14"),
        "barn": person(child.personnummer, child.given_name, child.family_name, child.birthdate.isoformat()),
        "samordning": person(SAMORDNING, "Jonas", "Berg", "1985-07-14", COORDINATION_NUMBER_CLAIM),
    }


def client(client_id: str, portal_url: str, **metadata: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "redirect_uris": [f"{portal_url}/auth/callback"],
        "post_logout_redirect_uris": [f"{portal_url}/"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        **metadata,
    }


@dataclass
class Portal:
    url: str
    settings: PortalSettings
    pool: asyncpg.Pool

    async def sessions(self) -> int:
        n: int = await self.pool.fetchval("SELECT count(*) FROM sessions WHERE kind = 'AUTHENTICATED'")
        return n


async def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, timeout=60, what=f"server on port {port}")
    return server, task


@asynccontextmanager
async def running_portal(port: int, issuer: str, **overrides: Any) -> AsyncIterator[Portal]:
    """The portal (no Kafka work: read model and relay off) with the consent service in-process, own schemas."""
    unique = uuid.uuid4().hex[:10]
    base = ServiceSettings()
    url = f"http://127.0.0.1:{port}"
    consent_settings = ConsentSettings(
        db_schema=f"e2e_{unique}_consent",
        topic_prefix=f"e2e{unique}.",
        environment="test",
        log_json=False,
        relay_enabled=False,
        consumer_enabled=False,
    )
    settings = PortalSettings(
        db_schema=f"e2e_{unique}_portal",
        topic_prefix=f"e2e{unique}.",
        environment="test",
        log_json=False,
        public_origin=url,
        oidc_issuer=issuer,
        consent_url="http://consent",
        relay_enabled=False,
        consumer_enabled=False,
        **overrides,
    )
    try:
        async with LifespanManager(create_consent(consent_settings), startup_timeout=60) as consent:
            app = create_portal(settings, consent_transport=httpx.ASGITransport(app=consent.app))
            server, task = await serve(app, port)
            try:
                yield Portal(url, settings, app_state(app, PortalState).pool)
            finally:
                server.should_exit = True
                await task
    finally:
        conn = await asyncpg.connect(base.database_url)
        try:
            for schema in (consent_settings.db_schema, settings.db_schema):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: deploy/local/bootstrap.sh installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def fresh_page(browser: Any) -> tuple[BrowserContext, Page]:
    """A new browser profile: no session at the portal nor at the provider."""
    context: BrowserContext = await browser.new_context(viewport={"width": 360, "height": 780}, locale="sv-SE")
    return context, await context.new_page()


async def log_in(page: Page, portal: Portal, provider: RunningProvider, account: str, acr: str = "loa3") -> None:
    """Through the provider's login and consent pages; returns back at the portal (wherever it sent us)."""
    await page.goto(f"{portal.url}/login")
    await page.wait_for_url(f"{provider.base_url}/interaction/**")
    await page.select_option("#account", account)
    await page.select_option("#acr", acr)
    await page.get_by_role("button", name="Logga in").click()
    await page.wait_for_url(lambda u: u.startswith(portal.url) or "/interaction/" in u)
    if "/interaction/" in page.url and await page.get_by_role("button", name="Godkänn").count():
        await page.get_by_role("button", name="Godkänn").click()
    await page.wait_for_url(f"{portal.url}/**")


class Lines(logging.Handler):
    """Every log line, rendered (attached after the portal configured logging, which replaces the handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_login_refusals_rotation_and_logout_in_chromium(tmp_path: Path) -> None:
    lines = Lines()
    idp_port, portal_port = free_port(), free_port()
    portal_url = f"http://127.0.0.1:{portal_port}"
    clients = [client(BASIC_CLIENT, portal_url, client_secret=SECRET, token_endpoint_auth_method="client_secret_basic")]
    async with (
        oidc_provider(idp_port, clients=clients, accounts=accounts()) as provider,
        running_portal(portal_port, provider.issuer, oidc_client_id=BASIC_CLIENT, oidc_client_secret=SECRET) as portal,
        chromium(tmp_path) as browser,
    ):
        logging.getLogger().addHandler(lines)
        assert provider.issuer.endswith("/")  # discovery must drop the slash, the issuer must match with it

        # First login: the provider's login and consent, then the portal's consent page (no consent given yet).
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "vuxen")
        assert page.url == f"{portal.url}/samtycke"
        assert await page.get_by_role("button", name="Jag ger mitt samtycke").count() == 1
        assert await page.get_by_text("Inloggad som Åsa Öberg").count() == 1  # the names came from userinfo
        assert await portal.sessions() == 1

        # Logout ends both sessions: the portal's at once, the provider's after its confirmation.
        await page.get_by_role("navigation").get_by_role("button", name="Logga ut").click()
        await page.wait_for_url(f"{provider.base_url}/**")
        assert "id_token_hint" not in page.url
        confirm = page.get_by_role("button", name="Yes, sign me out")
        await page.wait_for_load_state()
        assert await confirm.count() == 1, page.url + await page.content()
        await confirm.click()
        await page.wait_for_url(f"{portal.url}/")
        assert await portal.sessions() == 0
        await page.goto(f"{portal.url}/intyg")
        assert "/?inloggning=kravs" in page.url
        await page.goto(f"{portal.url}/login")  # the provider asks again: its session ended too
        await page.wait_for_url(f"{provider.base_url}/interaction/**")
        assert await page.get_by_role("button", name="Logga in").count() == 1
        await context.close()

        # loa2 is refused with the Swedish message.
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "vuxen", acr="loa2")
        assert "tillitsnivå 3 eller högre" in await page.content()
        assert await portal.sessions() == 0
        await context.close()

        # Under 16 is refused.
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "barn")
        assert "Du måste ha fyllt 16 år" in await page.content()
        assert await portal.sessions() == 0
        await context.close()

        # A samordningsnummer (the profile's own claim) is accepted.
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "samordning")
        assert page.url == f"{portal.url}/samtycke"
        assert await portal.sessions() == 1
        await context.close()

        # Key rotation: the provider signs with a new key; the portal fetches the JWKS again for the new kid.
        await provider.set_keys([new_key("k2"), *provider.keys])
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "vuxen")
        assert page.url == f"{portal.url}/samtycke"
        await context.close()
        # ... and the old key withdrawn: logins keep working with the new one.
        await provider.set_keys(provider.keys[:1])
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "vuxen")
        assert page.url == f"{portal.url}/samtycke"
        await context.close()

    logging.getLogger().removeHandler(lines)
    events = lines.lines
    assert any("portal.login.refused" in e and "loa_too_low" in e for e in events)
    assert any("portal.login.refused" in e and "under_age" in e for e in events)
    for number in (ADULT, SAMORDNING, accounts()["barn"][PERSONNUMMER_CLAIM]):
        assert not any(number in e for e in events), "a personnummer in a log line"


async def test_private_key_jwt_client_in_chromium(tmp_path: Path) -> None:
    idp_port, portal_port = free_port(), free_port()
    portal_url = f"http://127.0.0.1:{portal_port}"
    key = RSAKey.generate_key(2048, parameters={"kid": "portal-1"}, private=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    clients = [
        client(
            JWT_CLIENT,
            portal_url,
            token_endpoint_auth_method="private_key_jwt",
            token_endpoint_auth_signing_alg="RS256",
            jwks=jwks,
        )
    ]
    pem = key.as_pem(private=True).decode()
    async with (
        oidc_provider(idp_port, clients=clients, accounts=accounts(), trailing_slash=False) as provider,
        running_portal(
            portal_port,
            provider.issuer,
            oidc_client_id=JWT_CLIENT,
            oidc_client_private_key=pem,
            oidc_client_secret="not-used-" + uuid.uuid4().hex,
        ) as portal,
        chromium(tmp_path) as browser,
    ):
        context, page = await fresh_page(browser)
        await log_in(page, portal, provider, "vuxen")
        assert page.url == f"{portal.url}/samtycke"
        assert await portal.sessions() == 1
        await context.close()


async def test_the_provider_form_decodes_client_secret_basic() -> None:
    """Why the secret with `+` and `%` matters: the certified provider refuses the credentials unless both parts
    are form-encoded (client authentication happens before the code is looked at: refused vs invalid_grant)."""
    port = free_port()
    clients = [client(BASIC_CLIENT, "http://127.0.0.1:1", client_secret=SECRET)]
    async with oidc_provider(port, clients=clients, accounts=accounts()) as provider, httpx.AsyncClient() as http:
        data = {
            "grant_type": "authorization_code",
            "code": "unknown",
            "redirect_uri": "http://127.0.0.1:1/auth/callback",
            "code_verifier": "v" * 43,
        }
        token_endpoint = f"{provider.base_url}/token"
        raw = await http.post(token_endpoint, data=data, auth=(BASIC_CLIENT, SECRET))  # httpx does not form-encode
        assert raw.status_code == 400
        assert raw.json()["error"] == "invalid_request"
        assert "not properly encoded" in raw.json()["error_description"]
        encoded = await http.post(
            token_endpoint, data=data, headers={"Authorization": client_secret_basic(BASIC_CLIENT, SECRET)}
        )
        assert encoded.json()["error"] == "invalid_grant"
