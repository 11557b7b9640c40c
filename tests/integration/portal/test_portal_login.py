"""Login through the identity-provider simulator (in-process): the code flow with PKCE and nonce, a new session,
logout through the provider, and every tampered ID token the simulator's knobs can make refused.

The portal is addressed as https://127.0.0.1:8000 and the provider as http://127.0.0.1:8010, both over in-process
transports (no network): with https, httpx's cookie jar returns the `__Host-` Secure cookies as a browser would;
the portal sets them Secure regardless."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from deploy.simulators.idp.app import create_app as create_idp
from deploy.simulators.idp.settings import IdpsimSettings
from deploy.simulators.idp.testing import log_in
from tests.harness import eventually, running
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration

IDP = "http://127.0.0.1:8010"  # in-process (the mounted transport); loopback, as the provider wants http on
ORIGIN = "https://127.0.0.1:8000"
ADULT = "198507149808"
LOA = "http://id.elegnamnden.se/loa/1.0/"


@pytest.fixture
async def idp_app() -> AsyncIterator[FastAPI]:
    settings = IdpsimSettings(
        issuer=IDP,
        environment="test",
        log_json=False,
        redirect_uris=(f"{ORIGIN}/auth/callback",),
        post_logout_redirect_uris=(f"{ORIGIN}/",),
    )
    async with running(create_idp(settings)) as started:
        yield started  # type: ignore[misc]


@pytest.fixture
def idp_transport(idp_app: FastAPI) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=idp_app)


@pytest.fixture
def extra_transports(idp_transport: httpx.AsyncBaseTransport) -> dict[str, httpx.AsyncBaseTransport]:
    return {IDP: idp_transport}


@pytest.fixture
def portal_overrides() -> dict[str, Any]:
    return {"public_origin": ORIGIN, "oidc_issuer": IDP}


def session_cookie(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get("__Host-minaintyg-session")


async def test_login_consent_page_and_logout_through_the_provider(portal: PortalHarness) -> None:
    client = portal.client
    result = await log_in(client, IDP, ADULT, "loa3")
    assert result.response.status_code == 303, result.response.text
    assert result.response.headers["location"] == "/samtycke"
    authorize = httpx.URL(result.authorize_url)
    assert authorize.params["code_challenge_method"] == "S256"
    assert authorize.params["nonce"]
    assert "code_verifier" not in result.authorize_url
    cookie = session_cookie(client)
    assert cookie
    set_cookie = result.response.headers.get_list("set-cookie")
    assert any(c.startswith("__Host-minaintyg-session=") and "Secure" in c and "HttpOnly" in c
               and "SameSite=Lax" in c for c in set_cookie)  # fmt: skip
    me = (await client.get("/api/v1/me")).json()
    assert me["consent_given"] is False
    assert me["given_name"]
    stored = await portal.pool.fetchval("SELECT count(*) FROM sessions WHERE kind = 'AUTHENTICATED'")
    assert stored == 1
    assert await portal.pool.fetchval("SELECT count(*) FROM sessions WHERE kind = 'PRE_LOGIN'") == 0
    # The personnummer is in the server-side session only, never in the cookie.
    assert ADULT not in cookie

    # A second login gives a new session id.
    again = await log_in(client, IDP, ADULT, "loa4")
    assert again.response.status_code == 303
    assert session_cookie(client) != cookie
    replaced = await client.get("/api/v1/me", headers={"Cookie": f"__Host-minaintyg-session={cookie}"})
    assert replaced.status_code == 401  # the earlier session of this browser ended with the new login

    csrf = (await client.get("/api/v1/me")).json()["csrf_token"]
    logout = await client.post("/logout", headers={"X-CSRF-Token": csrf, "Origin": ORIGIN})
    # Logout continues at the provider, naming the client: the ID token is in no URL.
    assert logout.status_code == 303
    end_session = httpx.URL(logout.headers["location"])
    assert str(end_session).startswith(f"{IDP}/logout")
    assert end_session.params["post_logout_redirect_uri"] == f"{ORIGIN}/"
    assert end_session.params["client_id"] == "minaintyg-portal"
    assert "id_token_hint" not in end_session.params
    assert not await portal.pool.fetchval("SELECT count(*) FROM sessions WHERE id_token <> ''")
    back = await client.get(str(end_session))
    assert back.status_code in (302, 303)
    assert back.headers["location"].startswith(f"{ORIGIN}/")
    assert (await client.get("/api/v1/me")).status_code == 401
    stale = await client.get("/api/v1/me", headers={"Cookie": f"__Host-minaintyg-session={cookie}"})
    assert stale.status_code == 401


@pytest.mark.parametrize(
    ("name", "knob"),
    [
        ("alg none", {"alg": "none"}),
        ("HS256 with the client secret", {"alg": "HS256"}),
        ("signed by a key not in the JWKS", {"sign_with_unknown_key": True}),
        ("wrong audience", {"audience": "another-client"}),
        ("wrong issuer", {"issuer": "http://evil.test"}),
        ("expired", {"expires_in": -600}),
        ("wrong nonce", {"nonce": "not-this-login"}),
        ("acr too low", {"acr": f"{LOA}loa2"}),
        ("no subject", {"omit_claims": ["sub"]}),
        ("no nonce", {"omit_claims": ["nonce"]}),
    ],
)
async def test_tampered_id_tokens_are_refused(portal: PortalHarness, name: str, knob: dict[str, Any]) -> None:
    client = portal.client
    assert (await client.post(f"{IDP}/sim/next-id-token", json=knob)).status_code == 200
    result = await log_in(client, IDP, ADULT, "loa3")
    assert result.response.status_code == 403, name
    assert "Inloggningen" in result.response.text
    assert session_cookie(client) is None
    assert await portal.pool.fetchval("SELECT count(*) FROM sessions WHERE kind = 'AUTHENTICATED'") == 0


async def test_low_assurance_children_cancel_and_forged_state_are_refused(portal: PortalHarness) -> None:
    client = portal.client
    low = await log_in(client, IDP, ADULT, "loa2")
    assert low.response.status_code == 403
    assert "tillitsnivå 3" in low.response.text

    persons = (await client.get(f"{IDP}/sim/persons")).json()
    child = next(p for p in persons if int(p["birthdate"][:4]) > 2012)
    young = await log_in(client, IDP, child["personnummer"], "loa3")
    assert young.response.status_code == 403
    assert "16 år" in young.response.text

    cancelled = await log_in(client, IDP, ADULT, "loa3", action="avbryt")
    assert cancelled.response.status_code == 400
    assert "avbröts" in cancelled.response.text

    start = await client.get("/login")
    assert start.status_code == 303
    forged = await client.get("/auth/callback", params={"code": "stolen", "state": "guessed"})
    assert forged.status_code == 400
    # The pre-login row served its one callback: replaying the real state afterwards is refused too.
    state = httpx.URL(start.headers["location"]).params["state"]
    replay = await client.get("/auth/callback", params={"code": "stolen", "state": state})
    assert replay.status_code == 400
    assert session_cookie(client) is None


async def test_key_rotation_is_followed(portal: PortalHarness) -> None:
    client = portal.client
    assert (await log_in(client, IDP, ADULT, "loa3")).response.status_code == 303  # JWKS fetched and cached
    rotated = (await client.post(f"{IDP}/sim/rotate-keys")).json()
    assert rotated["current_kid"] in rotated["published_kids"]

    async def logs_in() -> bool:
        return (await log_in(client, IDP, ADULT, "loa3")).response.status_code == 303

    # A token under the new kid makes the portal fetch the JWKS again (at most once a second).
    await eventually(logs_in, timeout=10, interval=0.5, what="login with the rotated key")
