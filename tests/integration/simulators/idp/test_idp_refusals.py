"""What the identity-provider simulator refuses, and the tampered ID tokens /sim/next-id-token produces."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet, OctKey
from pydantic import SecretStr, ValidationError

from deploy.simulators.idp.app import create_app
from deploy.simulators.idp.settings import IdpsimSettings
from tests.integration.simulators.idp.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
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


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Header, claims and signature of a JWT, read without verifying anything."""
    header, payload, signature = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return result

    return decode(header), decode(payload), signature


# --- PKCE, codes, clients, redirects ------------------------------------------------------------------------


async def test_wrong_pkce_verifier_is_refused(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    response = await exchange(idp, request, code, verifier="x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_missing_pkce_verifier_is_refused(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    response = await exchange(idp, request, code, verifier=None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "code_verifier" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge"),
        ({"code_challenge_method": None}, "S256"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"nonce": None}, "nonce"),
    ],
    ids=["no-pkce", "method-missing-means-plain", "plain", "no-nonce"],
)
async def test_authorization_request_errors_are_redirected_with_state(
    idp: Idp, overrides: dict[str, str | None], mentions: str
) -> None:
    request = auth_request(**overrides)
    response = await idp.client.get("/authorize", params=request.params)
    query = query_of(response)
    assert response.headers["location"].startswith("http://127.0.0.1:8000/auth/callback?")
    assert query["error"] == "invalid_request"
    assert mentions in query["error_description"]
    assert query["state"] == request.state
    assert "code" not in query


@pytest.mark.parametrize(
    ("overrides", "error"),
    [({"scope": "profile"}, "invalid_scope"), ({"response_type": "token"}, "unsupported_response_type")],
)
async def test_other_redirectable_errors(idp: Idp, overrides: dict[str, str], error: str) -> None:
    request = auth_request(**overrides)
    query = query_of(await idp.client.get("/authorize", params=request.params))
    assert query["error"] == error
    assert query["state"] == request.state


async def test_authorization_code_is_single_use_and_reuse_revokes_its_tokens(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    first = await exchange(idp, request, code)
    assert first.status_code == 200
    again = await exchange(idp, request, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await idp.client.get("/userinfo", headers=bearer)).status_code == 401


async def test_authorization_code_is_short_lived(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    idp.clock.now += idp.settings.code_seconds + 1
    response = await exchange(idp, request, code)
    assert response.json()["error"] == "invalid_grant"


async def test_token_request_must_repeat_the_redirect_uri(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    response = await idp.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8000/other",
            "code_verifier": request.pkce.verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.json()["error"] == "invalid_grant"


async def test_bad_client_secret_is_refused_and_client_secret_post_works(idp: Idp) -> None:
    request = auth_request()
    code = await authorize(idp, request)
    wrong = await exchange(idp, request, code, secret="not-the-secret")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    # the code was not spent by the refused request; the same code with the secret in the body works
    posted = await idp.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.params["redirect_uri"],
            "code_verifier": request.pkce.verifier,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["id_token"]


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"redirect_uri": "https://evil.example/auth/callback"}, "Adressen som tjänsten vill skicka tillbaka dig"),
        ({"redirect_uri": "http://127.0.0.1:8000/auth/callback/x"}, "Adressen som tjänsten vill skicka tillbaka dig"),
        ({"redirect_uri": "http://127.0.0.1:9/other"}, "Adressen som tjänsten vill skicka tillbaka dig"),
        ({"redirect_uri": None}, "Tjänsten angav inte vart du ska skickas tillbaka"),
        ({"client_id": "someone-else"}, "Tjänsten som skickade dig hit är inte registrerad"),
        ({"client_id": None}, "Tjänsten som skickade dig hit är inte registrerad"),
    ],
    ids=["foreign", "longer-path", "loopback-other-path", "missing-redirect", "unknown-client", "no-client"],
)
async def test_bad_client_or_redirect_uri_shows_a_page_and_never_redirects(
    idp: Idp, overrides: dict[str, str | None], shown: str
) -> None:
    response = await idp.client.get("/authorize", params=auth_request(**overrides).params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Inloggningen kan inte genomföras" in response.text
    assert shown in response.text


async def test_loopback_callbacks_only_when_allowed(clock: FakeClock) -> None:
    loopback = "http://127.0.0.1:5555/auth/callback"
    async for strict in start(make_settings(allow_loopback_redirects=False), clock):
        refused = await strict.client.get("/authorize", params=auth_request(redirect_uri=loopback).params)
        assert refused.status_code == 400
        assert "location" not in refused.headers
    async for lenient in start(make_settings(allow_loopback_redirects=True), clock):
        request = auth_request(redirect_uri=loopback)
        code = await authorize(lenient, request)
        assert (await exchange(lenient, request, code)).status_code == 200


async def test_a_reused_nonce_is_refused(idp: Idp) -> None:
    first = auth_request()
    await authorize(idp, first)
    replay = auth_request(nonce=first.nonce)
    query = query_of(await idp.client.get("/authorize", params=replay.params))
    assert query["error"] == "invalid_request"


# --- the BankID (test) page -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"annat_personnummer": "19121212-1213"}, "datumet eller kontrollsiffran stämmer inte"),
        ({"annat_personnummer": "19121312-1212"}, "datumet eller kontrollsiffran stämmer inte"),
        ({"annat_personnummer": "abc"}, "Skriv personnumret med 12 siffror"),
        ({"personnummer": "20991231-0000"}, "Personnumret"),
        ({"personnummer": "12345"}, "Skriv personnumret med 12 siffror"),
        ({}, "Välj en testperson eller skriv ett personnummer"),
    ],
    ids=["check-digit", "no-such-date", "letters", "posted-invalid", "too-short", "nothing-chosen"],
)
async def test_invalid_personnummer_gives_a_swedish_error_on_the_page(
    idp: Idp, fields: dict[str, str], message: str
) -> None:
    txn = await open_page(idp, auth_request())
    response = await idp.client.post("/authorize", data={"txn": txn, "acr": "loa3", **fields})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Det gick inte att legitimera dig" in response.text
    assert message in response.text
    assert 'role="alert"' in response.text
    if fields:
        assert 'aria-invalid="true"' in response.text
    # the transaction survives the mistake: correcting it completes the login
    retry = await idp.client.post("/authorize", data={"txn": txn, "acr": "loa3", "personnummer": PERSON})
    assert "code" in query_of(retry)


async def test_an_unknown_assurance_level_is_refused_on_the_page(idp: Idp) -> None:
    txn = await open_page(idp, auth_request())
    response = await idp.client.post("/authorize", data={"txn": txn, "acr": "loa9", "personnummer": PERSON})
    assert response.status_code == 400
    assert "Välj en tillitsnivå" in response.text


async def test_cancel_redirects_with_access_denied(idp: Idp) -> None:
    request = auth_request()
    txn = await open_page(idp, request)
    response = await idp.client.post("/authorize", data={"txn": txn, "action": "avbryt", "personnummer": PERSON})
    query = query_of(response)
    assert query["error"] == "access_denied"
    assert query["state"] == request.state
    assert "code" not in query


async def test_a_finished_or_unknown_transaction_shows_that_it_expired(idp: Idp) -> None:
    request = auth_request()
    txn = await open_page(idp, request)
    assert "code" in query_of(await idp.client.post("/authorize", data={"txn": txn, "personnummer": PERSON}))
    for value in (txn, "made-up"):
        again = await idp.client.post("/authorize", data={"txn": value, "personnummer": PERSON})
        assert again.status_code == 400
        assert "Inloggningen har gått ut" in again.text


async def test_the_page_expires(idp: Idp) -> None:
    txn = await open_page(idp, auth_request())
    idp.clock.now += idp.settings.transaction_seconds + 1
    response = await idp.client.post("/authorize", data={"txn": txn, "personnummer": PERSON})
    assert "Inloggningen har gått ut" in response.text


# --- /sim/next-id-token -----------------------------------------------------------------------------------


async def tampered_login(idp: Idp, knobs: dict[str, Any]) -> tuple[str, str, KeySet]:
    """Set the knobs, log in: (the tampered ID token, the nonce sent, the JWKS); then check the next is clean."""
    set_response = await idp.client.post("/sim/next-id-token", json=knobs)
    assert set_response.status_code == 200, set_response.text
    assert (await idp.client.get("/sim/next-id-token")).json()["pending"] is not None
    request, token = await login(idp)
    keys = await jwks_of(idp)
    # only that one token: the next login is untouched
    assert (await idp.client.get("/sim/next-id-token")).json() == {"pending": None}
    clean_request, clean = await login(idp)
    verify(clean["id_token"], keys, nonce=clean_request.nonce, issuer=idp.settings.issuer)
    return token["id_token"], request.nonce, keys


async def test_knob_alg_none(idp: Idp) -> None:
    token, _, keys = await tampered_login(idp, {"alg": "none"})
    header, claims, signature = unverified(token)
    assert header["alg"] == "none"
    assert signature == ""
    assert claims[PNR_CLAIM] == PERSON
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, keys, algorithms=["RS256"])


async def test_knob_alg_hs256_keyed_by_the_client_secret(idp: Idp) -> None:
    token, _, keys = await tampered_login(idp, {"alg": "HS256"})
    assert unverified(token)[0]["alg"] == "HS256"
    assert jwt.decode(token, OctKey.import_key(CLIENT_SECRET.encode()), algorithms=["HS256"]).claims["aud"] == CLIENT_ID
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, keys, algorithms=["RS256"])


async def test_knob_sign_with_unknown_key(idp: Idp) -> None:
    token, _, keys = await tampered_login(idp, {"sign_with_unknown_key": True})
    header, _, _ = unverified(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == idp.provider.keys.current.kid  # a known kid, but not the key behind it
    with pytest.raises(BadSignatureError):
        jwt.decode(token, keys, algorithms=["RS256"])


@pytest.mark.parametrize(
    ("knobs", "claim", "value"),
    [
        ({"audience": "another-client"}, "aud", "another-client"),
        ({"issuer": "https://evil.example"}, "iss", "https://evil.example"),
        ({"nonce": "not-the-nonce"}, "nonce", "not-the-nonce"),
        ({"acr": f"{LOA}loa2"}, "acr", f"{LOA}loa2"),
    ],
)
async def test_knobs_replacing_a_claim_keep_a_valid_signature(
    idp: Idp, knobs: dict[str, Any], claim: str, value: str
) -> None:
    token, nonce, keys = await tampered_login(idp, knobs)
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims  # the signature is fine; the claim is not
    assert claims[claim] == value
    if claim != "acr":  # acr is the relying party's own rule; the others a standard verification refuses
        with pytest.raises(InvalidClaimError, match=claim):
            verify(token, keys, nonce=nonce, issuer=idp.settings.issuer)


async def test_knob_expires_in_negative_gives_an_expired_token(idp: Idp) -> None:
    token, nonce, keys = await tampered_login(idp, {"expires_in": -60})
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    assert claims["exp"] <= time.time() - 59
    assert claims["iat"] < claims["exp"]
    with pytest.raises(ExpiredTokenError):
        verify(token, keys, nonce=nonce, issuer=idp.settings.issuer)


async def test_knob_expires_in_positive_sets_the_lifetime(idp: Idp) -> None:
    token, nonce, keys = await tampered_login(idp, {"expires_in": 3600})
    claims = verify(token, keys, nonce=nonce, issuer=idp.settings.issuer)
    assert claims["exp"] - claims["iat"] == 3600


async def test_knob_omit_claims(idp: Idp) -> None:
    token, _, keys = await tampered_login(idp, {"omit_claims": ["nonce", "acr", PNR_CLAIM]})
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    assert "nonce" not in claims
    assert "acr" not in claims
    assert PNR_CLAIM not in claims
    assert claims["sub"]
    assert claims["aud"] == CLIENT_ID


async def test_knobs_combine(idp: Idp) -> None:
    token, _, _ = await tampered_login(idp, {"alg": "none", "audience": "x", "omit_claims": ["sub"]})
    header, claims, _ = unverified(token)
    assert header["alg"] == "none"
    assert claims["aud"] == "x"
    assert "sub" not in claims


async def test_unknown_or_malformed_knobs_are_refused(idp: Idp) -> None:
    for body in ({"alg": "RS512"}, {"colour": "red"}, {"expires_in": "soon"}):
        response = await idp.client.post("/sim/next-id-token", json=body)
        assert response.status_code == 422, body
    assert (await idp.client.get("/sim/next-id-token")).json() == {"pending": None}


# --- production -----------------------------------------------------------------------------------------------


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="IDPSIM_CLIENT_SECRET"):
        IdpsimSettings(environment="production")
    strong = SecretStr("9f2c4e7a1b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e")
    with pytest.raises(ValidationError, match="IDPSIM_SUBJECT_KEY"):
        IdpsimSettings(environment="production", client_secret=strong)


async def test_production_has_no_sim_routes(clock: FakeClock) -> None:
    settings = IdpsimSettings(
        environment="production",
        client_secret=SecretStr("9f2c4e7a1b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e"),
        subject_key=SecretStr("4b9d2f6a8c0e1g3i5k7m9o1q3s5u7w9y0a2c4e6g8i0k2m4o6q8s0u2w4y6a8c"),
        issuer="https://idp.example",
    )
    routes = {getattr(route, "path", "") for route in create_app(settings).routes}
    assert "/token" in routes
    assert not [path for path in routes if path.startswith("/sim/")]
