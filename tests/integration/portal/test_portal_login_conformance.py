"""The portal's login against the identity-provider simulator configured as a conformant provider would be: an
issuer with a trailing slash, a client secret with `+` and `%` (form-decoded, RFC 6749 §2.3.1), the names only in
userinfo; and a samordningsnummer. The same cases run in a real browser against panva's oidc-provider
(tests/e2e/test_portal_oidc_provider.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from deploy.simulators.idp.app import create_app as create_idp
from deploy.simulators.idp.settings import IdpsimSettings
from deploy.simulators.idp.testing import log_in
from services.kit.service import app_state
from services.portal.deps import Portal as PortalState
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration

IDP = "http://127.0.0.1:8010/"  # with the trailing slash: discovery must drop it, the issuer must keep it
ORIGIN = "https://127.0.0.1:8000"
SECRET = "Gx+4p%2Bq/7z%zz=="
ADULT = "198507149808"
SAMORDNING = "198507749805"


@pytest.fixture
async def idp_app() -> AsyncIterator[FastAPI]:
    settings = IdpsimSettings(
        issuer=IDP,
        environment="test",
        log_json=False,
        client_secret=SecretStr(SECRET),
        redirect_uris=(f"{ORIGIN}/auth/callback",),
        post_logout_redirect_uris=(f"{ORIGIN}/",),
    )
    async with LifespanManager(create_idp(settings)) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
def idp_transport(idp_app: FastAPI) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=idp_app)


@pytest.fixture
def extra_transports(idp_transport: httpx.AsyncBaseTransport) -> dict[str, httpx.AsyncBaseTransport]:
    return {IDP.rstrip("/"): idp_transport}


@pytest.fixture
def portal_overrides() -> dict[str, Any]:
    return {"public_origin": ORIGIN, "oidc_issuer": IDP, "oidc_client_secret": SECRET}


async def test_trailing_slash_issuer_encoded_secret_and_names_from_userinfo(portal: PortalHarness) -> None:
    result = await log_in(portal.client, IDP, ADULT, "loa3")
    assert result.response.status_code == 303, result.response.text
    assert result.response.headers["location"] == "/samtycke"
    me = (await portal.client.get("/api/v1/me")).json()
    assert me["given_name"]  # the simulator sends the names in userinfo only
    assert me["family_name"]


async def test_samordningsnummer_is_accepted(portal: PortalHarness) -> None:
    result = await log_in(portal.client, IDP, SAMORDNING, "loa3")
    assert result.response.status_code == 303, result.response.text
    stored = await portal.pool.fetchval("SELECT personnummer FROM sessions WHERE kind = 'AUTHENTICATED'")
    assert stored == SAMORDNING


async def test_loa2_and_under_16_are_refused_in_swedish(portal: PortalHarness) -> None:
    low = await log_in(portal.client, IDP, ADULT, "loa2")
    assert low.response.status_code == 403
    assert "tillitsnivå 3 eller högre" in low.response.text
    persons = (await portal.client.get(f"{IDP}sim/persons")).json()
    child = next(p for p in persons if p["note"] == "Under 16 år")
    young = await log_in(portal.client, IDP, child["personnummer"], "loa3")
    assert young.response.status_code == 403
    assert "16 år" in young.response.text


async def test_a_wrong_issuer_setting_is_an_issuer_mismatch_not_a_retry(portal: PortalHarness) -> None:
    """The metadata's issuer is compared exactly: without the slash it does not match, and login says so."""
    oidc = app_state(portal.app, PortalState).handlers.oidc
    oidc._settings = portal.settings.model_copy(update={"oidc_issuer": IDP.rstrip("/")})
    oidc._metadata = None
    response = await portal.client.get("/login")
    assert response.status_code == 502
    assert "Det hjälper inte att försöka igen" in response.text
