"""Fixtures for the identity-provider simulator: the app in-process over httpx, and the steps of a login.

The simulator keeps its state in memory and needs neither Kafka nor PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from deploy.simulators.idp.app import create_app
from deploy.simulators.idp.provider import Provider
from deploy.simulators.idp.settings import IdpsimSettings
from tests.harness import free_port, in_process

CLIENT_ID = "minaintyg-portal"
CLIENT_SECRET = "dev-portal-oidc-secret"
REDIRECT_URI = "http://127.0.0.1:8000/auth/callback"
PERSON = "198707049931"  # Mohammed Gustafsson, the first listed test person
LOA = "http://id.elegnamnden.se/loa/1.0/"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
COORD_CLAIM = "https://id.oidc.se/claim/coordinationNumber"
PROFILE_SCOPES = "openid https://id.oidc.se/scope/naturalPersonInfo https://id.oidc.se/scope/naturalPersonNumber"


class FakeClock:
    """Epoch seconds that a test moves forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_settings(**overrides: Any) -> IdpsimSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "issuer": f"http://127.0.0.1:{free_port()}",
        "allow_loopback_redirects": True,
        "log_json": False,
    }
    return IdpsimSettings(**(values | overrides))


@dataclass
class Idp:
    client: httpx.AsyncClient
    settings: IdpsimSettings
    provider: Provider
    clock: FakeClock


async def start(settings: IdpsimSettings, clock: FakeClock) -> AsyncIterator[Idp]:
    provider = Provider(settings, clock=clock)
    async with in_process(create_app(settings, provider), settings.issuer) as client:
        yield Idp(client, settings, provider, clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def idp(clock: FakeClock) -> AsyncIterator[Idp]:
    """The simulator in-process (test environment, loopback redirects allowed)."""
    async for running in start(make_settings(), clock):
        yield running


# --- the steps of a login -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return Pkce(verifier, challenge)


@dataclass(frozen=True)
class Request:
    params: dict[str, str]
    pkce: Pkce

    @property
    def nonce(self) -> str:
        return self.params["nonce"]

    @property
    def state(self) -> str:
        return self.params["state"]


def auth_request(**overrides: str | None) -> Request:
    """A valid authorization request; an override of None leaves that parameter out."""
    challenge = pkce()
    base: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": PROFILE_SCOPES,  # what the portal asks for
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge.challenge,
        "code_challenge_method": "S256",
    }
    params = base | overrides
    return Request({k: v for k, v in params.items() if v is not None}, challenge)


def txn_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    match = re.search(r'name="txn" value="([^"]+)"', page.text)
    assert match, page.text
    return match[1]


def query_of(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect's Location, one value per name."""
    assert response.status_code in (302, 303), response.text
    parsed = parse_qs(urlsplit(response.headers["location"]).query)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


async def open_page(idp: Idp, request: Request) -> str:
    """GET /authorize: the BankID (test) page's transaction id."""
    return txn_of(await idp.client.get("/authorize", params=request.params))


async def authorize(idp: Idp, request: Request, personnummer: str = PERSON, acr: str = "loa3") -> str:
    """The page, the form posted: the authorization code (after checking the redirect)."""
    txn = await open_page(idp, request)
    response = await idp.client.post("/authorize", data={"txn": txn, "personnummer": personnummer, "acr": acr})
    query = query_of(response)
    assert response.headers["location"].startswith(request.params["redirect_uri"] + "?")
    assert query["state"] == request.state
    return query["code"]


async def exchange(
    idp: Idp, request: Request, code: str, *, verifier: str | None = "", secret: str = CLIENT_SECRET
) -> httpx.Response:
    """POST /token with client_secret_basic; verifier "" means the right one, None leaves it out."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.params["redirect_uri"]}
    if verifier is not None:
        data["code_verifier"] = verifier or request.pkce.verifier
    return await idp.client.post("/token", data=data, auth=(CLIENT_ID, secret))


async def login(idp: Idp, personnummer: str = PERSON, acr: str = "loa3") -> tuple[Request, dict[str, Any]]:
    """A whole login: the request and the token response."""
    request = auth_request()
    code = await authorize(idp, request, personnummer, acr)
    response = await exchange(idp, request, code)
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return request, token


async def jwks_of(idp: Idp) -> KeySet:
    response = await idp.client.get("/jwks")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def verify(id_token: str, keys: KeySet, *, nonce: str, issuer: str, now: float | None = None) -> dict[str, Any]:
    """Verify an ID token the way a relying party does (RS256 only); the claims."""
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        now=int(now if now is not None else time.time()),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": CLIENT_ID},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(token.claims)
    return dict(token.claims)
