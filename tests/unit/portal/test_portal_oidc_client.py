"""The relying party's conversation with a provider, against a provider double (httpx.MockTransport): discovery
per OpenID Connect Discovery §4, RFC 9207 `iss`, client authentication (RFC 6749 §2.3.1, RFC 7523), userinfo with
its `sub` check, the JWKS lifetime (a withdrawn key stops being trusted), and the kinds of failure."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from services.portal.oidc import (
    CLIENT_ASSERTION_TYPE,
    PERSONNUMMER_CLAIM,
    LoginFailure,
    LoginRefused,
    OidcClient,
    client_secret_basic,
)
from services.portal.settings import PortalSettings

ISSUER = "https://eid.example.se/op/"
NOW = 1_780_000_000
TODAY = date(2026, 5, 28)
NONCE = "n-1"
SECRET = "Gx+4p%2Bq/7z%zz=="
KEY_A = RSAKey.generate_key(2048, parameters={"kid": "a"}, private=True)
KEY_B = RSAKey.generate_key(2048, parameters={"kid": "b"}, private=True)
CLIENT_KEY = RSAKey.generate_key(2048, parameters={"kid": "rp"}, private=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProvider:
    """A provider double: metadata, JWKS (what is published can change), token and userinfo endpoints."""

    def __init__(self, *, issuer: str = ISSUER, metadata: dict[str, Any] | None = None) -> None:
        base = issuer.rstrip("/")
        self.metadata = {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/me",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/end",
            **(metadata or {}),
        }
        self.published = [KEY_A]
        self.signing = KEY_A
        self.id_claims: dict[str, Any] = {}
        self.userinfo: dict[str, Any] = {}
        self.requests: list[httpx.Request] = []
        self.jwks_fetches = 0

    def id_token(self) -> str:
        claims = {
            "iss": ISSUER,
            "aud": "minaintyg-portal",
            "sub": "pseudo-1",
            "exp": NOW + 300,
            "iat": NOW,
            "nonce": NONCE,
            "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
            **self.id_claims,
        }
        return jwt.encode({"alg": "RS256", "kid": self.signing.kid}, claims, self.signing)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.metadata)
        if path.endswith("/jwks"):
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.published]})
        if path.endswith("/token"):
            return httpx.Response(200, json={"id_token": self.id_token(), "access_token": "at-1"})
        if path.endswith("/me"):
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


def make(provider: FakeProvider, clock: Clock | None = None, **settings: Any) -> OidcClient:
    values: dict[str, Any] = {
        "environment": "test",
        "oidc_issuer": ISSUER,
        "oidc_client_secret": SECRET,
        "oidc_jwks_seconds": 300,
        **settings,
    }
    return OidcClient(PortalSettings(**values), httpx.MockTransport(provider.handler), clock or Clock())


async def login(client: OidcClient) -> Any:
    tokens = await client.exchange("code-1", "verifier-1")
    return await client.identity(tokens, NONCE, now=NOW, today=TODAY)


def person_claims() -> dict[str, Any]:
    return {PERSONNUMMER_CLAIM: "198507149808", "given_name": "Åsa", "family_name": "Öberg"}


async def test_discovery_drops_the_trailing_slash_and_compares_the_issuer_exactly() -> None:
    provider = FakeProvider()
    client = make(provider)
    assert (await client.metadata())["issuer"] == ISSUER
    assert str(provider.requests[0].url) == "https://eid.example.se/op/.well-known/openid-configuration"
    with pytest.raises(LoginRefused) as refused:
        await make(FakeProvider(), oidc_issuer=ISSUER.rstrip("/")).metadata()
    assert refused.value.kind is LoginFailure.ISSUER_MISMATCH
    assert not refused.value.retry


async def test_rfc9207_iss_is_checked_and_required_when_announced() -> None:
    client = make(FakeProvider(metadata={"authorization_response_iss_parameter_supported": True}))
    await client.check_response_issuer(ISSUER)
    for iss in (None, "https://evil.example/"):
        with pytest.raises(LoginRefused) as refused:
            await client.check_response_issuer(iss)
        assert refused.value.kind is LoginFailure.ISSUER_MISMATCH
    await make(FakeProvider()).check_response_issuer(None)  # not announced, not sent: fine


def test_client_secret_basic_form_encodes_both_parts() -> None:
    header = client_secret_basic("min app", SECRET)
    raw_id, raw_secret = base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1)
    assert raw_id == "min+app"
    assert "+" not in raw_secret
    assert "%" in raw_secret
    assert (unquote_plus(raw_id), unquote_plus(raw_secret)) == ("min app", SECRET)


async def test_the_token_request_uses_client_secret_basic_by_default() -> None:
    provider = FakeProvider()
    provider.id_claims = person_claims()
    await login(make(provider))
    token_request = next(r for r in provider.requests if r.url.path.endswith("/token"))
    assert token_request.headers["authorization"] == client_secret_basic("minaintyg-portal", SECRET)
    assert b"client_assertion" not in token_request.content


async def test_private_key_jwt_when_a_key_is_set_and_the_provider_takes_it() -> None:
    provider = FakeProvider(
        metadata={"token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"]}
    )
    provider.id_claims = person_claims()
    await login(make(provider, oidc_client_private_key=json.dumps(CLIENT_KEY.as_dict(private=True))))
    token_request = next(r for r in provider.requests if r.url.path.endswith("/token"))
    assert "authorization" not in token_request.headers
    form = {k: v[0] for k, v in parse_qs(token_request.content.decode()).items()}
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    public = KeySet.import_key_set({"keys": [CLIENT_KEY.as_dict(private=False)]})
    assertion = jwt.decode(form["client_assertion"], public, algorithms=["RS256"]).claims
    assert assertion["iss"] == assertion["sub"] == "minaintyg-portal"
    assert assertion["aud"] == provider.metadata["token_endpoint"]
    assert assertion["exp"] - assertion["iat"] <= 60
    assert assertion["jti"]


async def test_identity_from_userinfo_when_the_id_token_lacks_it_and_sub_must_match() -> None:
    provider = FakeProvider()
    provider.userinfo = {"sub": "pseudo-1", **person_claims()}
    identity = await login(make(provider))
    assert (identity.personnummer, identity.given_name, identity.loa) == ("198507149808", "Åsa", 3)
    me = next(r for r in provider.requests if r.url.path.endswith("/me"))
    assert me.headers["authorization"] == "Bearer at-1"

    provider.userinfo = {"sub": "someone-else", **person_claims()}
    with pytest.raises(LoginRefused) as refused:
        await login(make(provider))
    assert refused.value.code == "userinfo_sub_mismatch"
    assert refused.value.kind is LoginFailure.TOKEN_REFUSED


async def test_the_jwks_is_refetched_for_a_new_kid_and_after_its_lifetime_so_a_withdrawn_key_is_refused() -> None:
    provider = FakeProvider()
    provider.id_claims = person_claims()
    clock = Clock()
    client = make(provider, clock)
    await login(client)
    assert provider.jwks_fetches == 1

    # Rotation: B signs, A still published. The unknown kid makes one refetch.
    provider.published, provider.signing = [KEY_B, KEY_A], KEY_B
    clock.now += 2
    await login(client)
    assert provider.jwks_fetches == 2

    # A is withdrawn, and a token signed with A turns up (a leaked key): trusted only until the lifetime ends.
    provider.published, provider.signing = [KEY_B], KEY_A
    await login(client)  # still within the cached set's lifetime
    clock.now += 301
    with pytest.raises(LoginRefused) as refused:
        await login(client)
    assert refused.value.code == "unknown_key"
    assert provider.jwks_fetches >= 3


async def test_an_unreachable_provider_is_its_own_kind_and_worth_a_retry() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = OidcClient(PortalSettings(environment="test", oidc_issuer=ISSUER), httpx.MockTransport(down))
    with pytest.raises(LoginRefused) as refused:
        await client.authorization_url(state="s", nonce="n", code_verifier="v" * 43)
    assert refused.value.kind is LoginFailure.UNREACHABLE
    assert refused.value.retry
    assert "Försök igen om en stund" in refused.value.message


async def test_the_authorization_request_asks_for_the_swedish_profile_scopes() -> None:
    url = await make(FakeProvider()).authorization_url(state="s", nonce="n", code_verifier="v" * 43)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == [
        "openid https://id.oidc.se/scope/naturalPersonInfo https://id.oidc.se/scope/naturalPersonNumber"
    ]
    assert query["acr_values"] == ["http://id.elegnamnden.se/loa/1.0/loa3 http://id.elegnamnden.se/loa/1.0/loa4"]


async def test_logout_url_names_the_client_and_carries_no_token() -> None:
    url = await make(FakeProvider()).end_session_url("https://minaintyg.se/")
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query == {"client_id": ["minaintyg-portal"], "post_logout_redirect_uri": ["https://minaintyg.se/"]}
