"""The identity-provider simulator's happy paths: discovery, the code flow with PKCE, userinfo, rotation, logout."""

from __future__ import annotations

import base64
import re
import time
from html.parser import HTMLParser
from urllib.parse import quote_plus

import pytest
from authlib.oidc import rpinitiated
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError

from tests.integration.simulators.idp.conftest import (
    CLIENT_ID,
    COORD_CLAIM,
    LOA,
    PERSON,
    PNR_CLAIM,
    FakeClock,
    Idp,
    auth_request,
    authorize,
    exchange,
    jwks_of,
    login,
    make_settings,
    open_page,
    query_of,
    start,
    verify,
)

pytestmark = pytest.mark.integration


async def test_discovery_document_is_complete_and_valid(idp: Idp) -> None:
    response = await idp.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    issuer = idp.settings.issuer
    assert meta["issuer"] == issuer
    assert meta["authorization_endpoint"] == f"{issuer}/authorize"
    assert meta["token_endpoint"] == f"{issuer}/token"
    assert meta["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert meta["jwks_uri"] == f"{issuer}/jwks"
    assert meta["end_session_endpoint"] == f"{issuer}/logout"
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert meta["scopes_supported"] == [
        "openid",
        "profile",
        "https://id.oidc.se/scope/naturalPersonInfo",
        "https://id.oidc.se/scope/naturalPersonNumber",
    ]
    assert meta["acr_values_supported"] == [f"{LOA}loa2", f"{LOA}loa3", f"{LOA}loa4"]
    for claim in ("sub", "acr", "nonce", PNR_CLAIM, "given_name", "family_name", "name", "birthdate"):
        assert claim in meta["claims_supported"]
    # Authlib's validator of OpenID Provider Metadata (Discovery 1.0 and RP-Initiated Logout) accepts it.
    OpenIDProviderMetadata(meta).validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])


async def test_code_flow_with_pkce_gives_an_id_token_with_the_number(idp: Idp) -> None:
    request = auth_request()
    page = await idp.client.get("/authorize", params=request.params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="sv">' in page.text
    assert "<title>BankID (test)" in page.text
    assert "Legitimera" in page.text
    assert "Avbryt" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    txn = re.search(r'name="txn" value="([^"]+)"', page.text)
    assert txn
    before = int(time.time())
    form = await idp.client.post("/authorize", data={"txn": txn[1], "personnummer": PERSON, "acr": "loa3"})
    query = query_of(form)
    assert form.headers["location"].startswith("http://127.0.0.1:8000/auth/callback?")
    assert set(query) == {"code", "state"}
    assert query["state"] == request.state

    token_response = await exchange(idp, request, query["code"])
    assert token_response.status_code == 200, token_response.text
    assert token_response.headers["cache-control"] == "no-store"
    token = token_response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == idp.settings.access_token_seconds
    assert token["access_token"]

    keys = await jwks_of(idp)
    header = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).header
    assert header["alg"] == "RS256"
    assert header["kid"] == idp.provider.keys.current.kid
    claims = verify(token["id_token"], keys, nonce=request.nonce, issuer=idp.settings.issuer)
    assert claims["iss"] == idp.settings.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == request.nonce
    assert claims["acr"] == f"{LOA}loa3"
    assert claims[PNR_CLAIM] == PERSON
    # The names come from userinfo only (the Swedish profile's naturalPersonInfo, OpenID Connect Core 5.4).
    for name in ("given_name", "family_name", "name", "birthdate"):
        assert name not in claims
    assert claims["exp"] - claims["iat"] == 300
    assert before - 1 <= claims["iat"] <= time.time() + 1
    assert before - 1 <= claims["auth_time"] <= claims["iat"]
    # sub: a stable pseudonym, neither the personnummer nor anything containing it
    assert re.fullmatch(r"[0-9a-f]{64}", claims["sub"])
    assert PERSON not in claims["sub"]
    assert PERSON[2:] not in claims["sub"]
    _, again = await login(idp)
    assert jwt.decode(again["id_token"], keys).claims["sub"] == claims["sub"]
    persons = (await idp.client.get("/sim/persons")).json()
    assert next(p for p in persons if p["personnummer"] == PERSON)["sub"] == claims["sub"]


@pytest.mark.parametrize("level", ["loa2", "loa4"])
async def test_the_chosen_assurance_level_is_the_acr(idp: Idp, level: str) -> None:
    request, token = await login(idp, acr=level)
    claims = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
    assert claims["acr"] == f"{LOA}{level}"


async def test_requested_acr_values_preselect_the_level(idp: Idp) -> None:
    page = await idp.client.get("/authorize", params=auth_request(acr_values=f"{LOA}loa4").params)
    assert '<option value="loa4" selected>' in page.text
    default = await idp.client.get("/authorize", params=auth_request().params)
    assert '<option value="loa3" selected>' in default.text


async def test_a_typed_personnummer_logs_in_that_person(idp: Idp) -> None:
    request = auth_request()
    txn = await open_page(idp, request)
    response = await idp.client.post(
        "/authorize", data={"txn": txn, "annat_personnummer": "19121212-1212", "acr": "loa3"}
    )
    code = query_of(response)["code"]
    token = (await exchange(idp, request, code)).json()
    verified = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
    assert verified[PNR_CLAIM] == "191212121212"
    info = await idp.client.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    claims = info.json()
    assert claims["birthdate"] == "1912-12-12"
    assert claims["name"] == f"{claims['given_name']} {claims['family_name']}"


async def test_userinfo_answers_the_person_claims_for_the_access_token(idp: Idp) -> None:
    request, token = await login(idp)
    claims = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
    response = await idp.client.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200
    assert response.json() == {
        "sub": claims["sub"],
        PNR_CLAIM: PERSON,
        "given_name": "Mohammed",
        "family_name": "Gustafsson",
        "name": "Mohammed Gustafsson",
        "birthdate": "1987-07-04",
    }
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        refused = await idp.client.get("/userinfo", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].lower().startswith("bearer")


async def test_access_token_expires(idp: Idp) -> None:
    _, token = await login(idp)
    idp.clock.now += idp.settings.access_token_seconds + 1
    response = await idp.client.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_key_rotation_keeps_the_previous_key_published(idp: Idp) -> None:
    first_request, first = await login(idp)
    first_kid = idp.provider.keys.current.kid
    assert len((await idp.client.get("/jwks")).json()["keys"]) == 1

    rotated = await idp.client.post("/sim/rotate-keys")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["current_kid"] != first_kid
    assert body["published_kids"] == [body["current_kid"], first_kid]
    jwks = (await idp.client.get("/jwks")).json()
    assert [k["kid"] for k in jwks["keys"]] == [body["current_kid"], first_kid]
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig" for k in jwks["keys"])
    assert all("d" not in k for k in jwks["keys"])  # public halves only

    keys = await jwks_of(idp)
    # the token signed before the rotation still verifies; a new one is signed with the new key
    verify(first["id_token"], keys, nonce=first_request.nonce, issuer=idp.settings.issuer)
    second_request, second = await login(idp)
    assert jwt.decode(second["id_token"], keys).header["kid"] == body["current_kid"]
    verify(second["id_token"], keys, nonce=second_request.nonce, issuer=idp.settings.issuer)

    # a second rotation drops the first key
    await idp.client.post("/sim/rotate-keys")
    keys = await jwks_of(idp)
    assert len(keys.keys) == 2
    with pytest.raises((InvalidKeyIdError, ValueError, BadSignatureError)):
        jwt.decode(first["id_token"], keys, algorithms=["RS256"])
    verify(second["id_token"], keys, nonce=second_request.nonce, issuer=idp.settings.issuer)


async def test_logout_ends_the_idp_session_and_redirects_to_a_registered_uri(idp: Idp) -> None:
    _, token = await login(idp)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await idp.client.get("/userinfo", headers=bearer)).status_code == 200
    response = await idp.client.get(
        "/logout",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:8000/",
            "state": "s1",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8000/?state=s1"
    assert (await idp.client.get("/userinfo", headers=bearer)).status_code == 401


async def test_logout_without_hint_or_to_an_unregistered_uri(idp: Idp) -> None:
    plain = await idp.client.get("/logout", params={"post_logout_redirect_uri": "http://127.0.0.1:8000/"})
    assert plain.status_code == 302
    assert plain.headers["location"] == "http://127.0.0.1:8000/"
    _, token = await login(idp)
    elsewhere = await idp.client.get(
        "/logout", params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": "https://evil.example/"}
    )
    assert elsewhere.status_code == 200
    assert "Du är utloggad" in elsewhere.text
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await idp.client.get("/userinfo", headers=bearer)).status_code == 401


async def test_logout_with_a_forged_hint_is_refused_without_redirect(idp: Idp) -> None:
    await idp.client.post("/sim/next-id-token", json={"sign_with_unknown_key": True})
    _, token = await login(idp)
    response = await idp.client.get(
        "/logout", params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:8000/"}
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Utloggningen kunde inte kontrolleras" in response.text


async def test_sim_persons_lists_adults_test_patients_and_a_child(idp: Idp) -> None:
    persons = (await idp.client.get("/sim/persons")).json()
    notes = [p["note"] for p in persons]
    assert notes.count(None) == 12
    assert notes.count("Testpatient") == 3
    assert notes.count("Under 16 år") == 1
    assert all(re.fullmatch(r"[0-9]{12}", p["personnummer"]) for p in persons)
    page = await idp.client.get("/authorize", params=auth_request().params)
    for person in persons:
        assert person["name"] in page.text
        assert f"{person['personnummer'][:8]}-{person['personnummer'][8:]}" in page.text
    assert "Testpatient" in page.text
    assert "Under 16 år" in page.text


async def test_child_can_log_in_at_the_idp_the_portal_must_refuse_it(idp: Idp) -> None:
    child = next(p for p in (await idp.client.get("/sim/persons")).json() if p["note"] == "Under 16 år")
    request, token = await login(idp, child["personnummer"])
    verified = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
    assert verified[PNR_CLAIM] == child["personnummer"]
    info = await idp.client.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    claims = info.json()
    assert claims["birthdate"] == child["birthdate"]
    assert int(time.strftime("%Y")) - int(claims["birthdate"][:4]) <= 11


async def test_clearing_state_forgets_codes_and_tokens(idp: Idp) -> None:
    _, token = await login(idp)
    request = auth_request()
    code = await authorize(idp, request)
    assert (await idp.client.delete("/sim/state")).status_code == 204
    assert (await exchange(idp, request, code)).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await idp.client.get("/userinfo", headers=bearer)).status_code == 401


async def test_operational_endpoints(idp: Idp) -> None:
    assert (await idp.client.get("/healthz")).json() == {"status": "ok"}
    assert (await idp.client.get("/readyz")).status_code == 200
    await login(idp)
    metrics = (await idp.client.get("/metrics")).text
    assert 'idpsim_logins_total{outcome="authenticated"}' in metrics
    assert 'idpsim_token_requests_total{outcome="issued"}' in metrics
    css = await idp.client.get("/static/idp.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


class _Controls(HTMLParser):
    """Form controls, label targets, and what the page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.label_for.add(attributes["for"] or "")
        for name in ("src", "href"):
            if tag in ("script", "link", "img", "iframe") and attributes.get(name):
                self.loads.append(attributes[name] or "")


async def test_every_control_of_the_page_is_labelled_and_nothing_is_loaded_from_elsewhere(idp: Idp) -> None:
    for page in (
        await idp.client.get("/authorize", params=auth_request().params),
        await idp.client.post(
            "/authorize",
            data={"txn": await open_page(idp, auth_request()), "annat_personnummer": "1", "acr": "loa9"},
        ),
    ):
        parser = _Controls()
        parser.feed(page.text)
        assert len(parser.controls) == 16 + 2  # the persons, the typed number, the level
        for control in parser.controls:
            assert control.get("id") in parser.label_for, control
        assert parser.loads == ["/static/idp.css"]
        assert "<script" not in page.text


async def test_claims_are_released_only_for_the_scopes_asked_for(idp: Idp) -> None:
    """As a conformant provider: `openid` alone gives no person claims; the number needs naturalPersonNumber, the
    names naturalPersonInfo (or profile), and those come from userinfo."""
    for scope, in_token, in_userinfo in (
        ("openid", set(), set()),
        ("openid profile", set(), {"given_name", "family_name", "name", "birthdate"}),
        ("openid https://id.oidc.se/scope/naturalPersonNumber", {PNR_CLAIM}, {PNR_CLAIM}),
    ):
        request = auth_request(scope=scope)
        code = await authorize(idp, request)
        token = (await exchange(idp, request, code)).json()
        claims = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
        person = {PNR_CLAIM, COORD_CLAIM, "given_name", "family_name", "name", "birthdate"}
        assert person & set(claims) == in_token, scope
        info = await idp.client.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert person & set(info.json()) == in_userinfo, scope


async def test_a_samordningsnummer_comes_in_the_profiles_own_claim(idp: Idp) -> None:
    request = auth_request()
    txn = await open_page(idp, request)
    response = await idp.client.post("/authorize", data={"txn": txn, "annat_personnummer": "198507749805"})
    token = (await exchange(idp, request, query_of(response)["code"])).json()
    claims = verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=idp.settings.issuer)
    assert claims[COORD_CLAIM] == "198507749805"
    assert PNR_CLAIM not in claims


async def test_an_issuer_with_a_trailing_slash_is_kept_exactly(clock: FakeClock) -> None:
    settings = make_settings()
    async for idp in start(make_settings(issuer=settings.issuer + "/"), clock):
        meta = (await idp.client.get("/.well-known/openid-configuration")).json()
        assert meta["issuer"] == settings.issuer + "/"
        assert meta["token_endpoint"] == f"{settings.issuer}/token"  # no doubled slash
        request, token = await login(idp)
        verify(token["id_token"], await jwks_of(idp), nonce=request.nonce, issuer=settings.issuer + "/")


async def test_client_secret_basic_is_form_decoded(clock: FakeClock) -> None:
    """RFC 6749 §2.3.1: a secret with `+` and `%` works only when the client form-encodes it."""
    secret = "Gx+4p%2Bq/7z%zz=="
    async for idp in start(make_settings(client_secret=secret), clock):
        request = auth_request()
        code = await authorize(idp, request)
        raw = await exchange(idp, request, code, secret=secret)  # httpx's Basic does not form-encode
        assert raw.status_code == 401
        request = auth_request()
        code = await authorize(idp, request)
        encoded = base64.b64encode(f"{quote_plus(CLIENT_ID)}:{quote_plus(secret)}".encode()).decode()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.params["redirect_uri"],
            "code_verifier": request.pkce.verifier,
        }
        ok = await idp.client.post("/token", data=data, headers={"Authorization": f"Basic {encoded}"})
        assert ok.status_code == 200, ok.text
