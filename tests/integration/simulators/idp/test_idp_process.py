"""`idp-sim` as a real process: a relying party built on Authlib's client logs in through it with the helper of
`deploy.simulators.idp.testing`, its keys rotate on their own, and its log holds no personnummer or name."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet

from deploy.simulators.idp.testing import IdpLoginError, LoginResult, log_in
from tests.harness import ServiceProcess, eventually, free_port
from tests.integration.simulators.idp.conftest import CLIENT_ID, CLIENT_SECRET, LOA, PERSON, PNR_CLAIM, PROFILE_SCOPES

with warnings.catch_warnings():
    # Authlib 1.9 announces that it will move from httpx to httpx2; the client works the same on httpx.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytestmark = pytest.mark.integration


def idp_process_logging_to(log_file: Path, **env: str) -> ServiceProcess:
    """`idp-sim` on a free port (its issuer is that address), its log in a file."""
    port = free_port()
    own = {
        "IDPSIM_ISSUER": f"http://127.0.0.1:{port}",
        "IDPSIM_ENV": "test",
        "IDPSIM_ALLOW_LOOPBACK_REDIRECTS": "true",
        "LOG_JSON": "true",
    }
    return ServiceProcess("idp-sim", own | env, port_env="IDPSIM_PORT", port=port, log=log_file)


@pytest.fixture
def idp_log(tmp_path: Path) -> Path:
    return tmp_path / "idp-sim.log"


@pytest.fixture
async def idp_process(idp_log: Path) -> AsyncIterator[ServiceProcess]:
    async with idp_process_logging_to(idp_log) as process:
        yield process


# --- a minimal relying party on Authlib's OAuth 2 client ------------------------------------------------------


def relying_party(idp_url: str, rp_url: str) -> FastAPI:
    """Code flow with PKCE and nonce; accepts an ID token only at loa3 or loa4; a session cookie afterwards."""
    app = FastAPI()
    pending: dict[str, tuple[str, str]] = {}  # state -> (code verifier, nonce)
    sessions: dict[str, dict[str, Any]] = {}
    redirect_uri = f"{rp_url}/auth/callback"

    def oauth(state: str | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scope=PROFILE_SCOPES,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            state=state,
        )

    async def metadata() -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            result: dict[str, Any] = (await client.get(f"{idp_url}/.well-known/openid-configuration")).json()
            return result

    @app.get("/login")
    async def login() -> Response:
        verifier, nonce = generate_token(48), generate_token(20)
        async with oauth() as client:
            url, state = client.create_authorization_url(
                (await metadata())["authorization_endpoint"],
                code_verifier=verifier,
                nonce=nonce,
                acr_values=f"{LOA}loa3",
            )
        pending[state] = (verifier, nonce)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie("rp_state", state, httponly=True, samesite="lax")
        return response

    @app.get("/auth/callback")
    async def callback(request: Request) -> Response:
        params = request.query_params
        if "error" in params:
            return JSONResponse({"refused": params["error"]}, status_code=401)
        state = params.get("state", "")
        if state not in pending or request.cookies.get("rp_state") != state:
            return JSONResponse({"refused": "state"}, status_code=400)
        verifier, nonce = pending.pop(state)
        meta = await metadata()
        async with oauth(state) as client:
            token = await client.fetch_token(
                meta["token_endpoint"], authorization_response=str(request.url), code_verifier=verifier
            )
            keys = KeySet.import_key_set((await client.request("GET", meta["jwks_uri"], withhold_token=True)).json())
            info = (await client.get(meta["userinfo_endpoint"])).json()  # the names are only in userinfo
        decoded = jwt.decode(token["id_token"], keys, algorithms=meta["id_token_signing_alg_values_supported"])
        # as Authlib's OpenID client validates (parse_id_token): iss, aud, exp, iat, nonce, at_hash
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"values": [meta["issuer"]]}},
            {"nonce": nonce, "client_id": CLIENT_ID, "access_token": token["access_token"]},
        )
        claims.validate(leeway=5)
        if claims["acr"] not in (f"{LOA}loa3", f"{LOA}loa4"):
            return JSONResponse({"refused": "acr"}, status_code=403)
        if info.get("sub") != claims["sub"]:
            return JSONResponse({"refused": "userinfo sub"}, status_code=403)
        session = generate_token(24)
        sessions[session] = {**info, **dict(claims)}
        response = RedirectResponse("/", status_code=303)
        response.set_cookie("rp_session", session, httponly=True, samesite="lax")
        return response

    @app.get("/")
    async def home(request: Request) -> Response:
        claims = sessions.get(request.cookies.get("rp_session", ""))
        if claims is None:
            return JSONResponse({"logged_in": False}, status_code=401)
        return JSONResponse({"logged_in": True, "name": claims["name"], "personnummer": claims[PNR_CLAIM]})

    return app


@pytest.fixture
async def portal(idp_process: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the relying party (in-process); the identity provider is reached over real HTTP."""
    rp_url = f"http://127.0.0.1:{free_port()}"
    transport = httpx.ASGITransport(app=relying_party(idp_process.url, rp_url))
    async with httpx.AsyncClient(base_url=rp_url, mounts={rp_url: transport}) as client:
        yield client


async def test_helper_logs_in_through_the_page_to_an_authlib_relying_party(
    portal: httpx.AsyncClient, idp_process: ServiceProcess
) -> None:
    result: LoginResult = await log_in(portal, idp_process.url, PERSON, "loa3")
    assert result.authorize_url.startswith(f"{idp_process.url}/authorize?")
    assert set(result.callback_params) == {"code", "state"}
    assert result.response.status_code == 303, result.response.text
    assert result.response.headers["location"] == "/"
    home = await portal.get("/")
    assert home.json() == {"logged_in": True, "name": "Mohammed Gustafsson", "personnummer": PERSON}

    # a typed personnummer outside the list, at loa4, with the full acr value
    await log_in(portal, idp_process.url, "19121212-1212", f"{LOA}loa4")
    assert (await portal.get("/")).json()["personnummer"] == "191212121212"

    # below loa3 the relying party refuses; cancelling gives access_denied
    low = await log_in(portal, idp_process.url, PERSON, "loa2")
    assert low.response.status_code == 403
    cancelled = await log_in(portal, idp_process.url, PERSON, action="avbryt")
    assert cancelled.callback_params["error"] == "access_denied"
    assert cancelled.response.status_code == 401

    # nothing personal in the simulator's log
    text = idp_process.read_log()
    assert "idpsim.login.authenticated" in text
    for secret in (PERSON, PERSON[2:], "19121212", "Gustafsson", "Mohammed"):
        assert secret not in text


async def test_helper_reports_what_went_wrong(portal: httpx.AsyncClient, idp_process: ServiceProcess) -> None:
    with pytest.raises(IdpLoginError, match="datumet eller kontrollsiffran stämmer inte"):
        await log_in(portal, idp_process.url, "19121212-1213")
    with pytest.raises(IdpLoginError, match="not to the provider"):
        await log_in(portal, "http://127.0.0.1:1", PERSON)
    with pytest.raises(IdpLoginError, match="where a redirect was expected"):
        await log_in(portal, idp_process.url, PERSON, login_path="/")


async def test_keys_rotate_on_their_own(idp_log: Path) -> None:
    async with (
        idp_process_logging_to(idp_log, IDPSIM_ROTATE_SECONDS="0.5") as process,
        httpx.AsyncClient(base_url=process.url) as client,
    ):
        first = (await client.get("/jwks")).json()["keys"][0]["kid"]

        async def rotated() -> bool:
            kids = [k["kid"] for k in (await client.get("/jwks")).json()["keys"]]
            return kids[0] != first and len(kids) == 2

        await eventually(rotated, timeout=20, interval=0.2, what="an automatic key rotation")
        metrics = (await client.get("/metrics")).text
        assert "idpsim_key_rotations_total" in metrics
