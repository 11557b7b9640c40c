"""The identity-provider simulator's HTTP API: the OpenID Connect endpoints, the BankID (test) page, and /sim/.

Protocol endpoints: discovery, `/authorize` (the page), `/token`, `/userinfo`, `/jwks`, `/logout`. `/sim/` is for
tests and demos (tampered ID tokens, key rotation, the test persons, clearing state) and does not exist in
production. State is in memory: a restart forgets codes, tokens and sessions, and publishes new keys.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import structlog
from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter
from pydantic import Field
from starlette.datastructures import FormData

from deploy.simulators.idp.bootstrap import IdpSim, bootstrap, rotate
from deploy.simulators.idp.keys import ALGORITHM
from deploy.simulators.idp.persons import PERSON_CLAIMS, TestPerson, listed_persons, person_for
from deploy.simulators.idp.provider import (
    ACR_VALUES,
    ASSURANCE_LEVELS,
    LOA_PREFIX,
    SCOPES,
    IdTokenOverrides,
    Provider,
    SimRequest,
    Transaction,
    to_response,
)
from deploy.simulators.idp.settings import IdpsimSettings
from schemas.base import Frozen
from schemas.identifiers import InvalidIdentifier, parse_personal_number
from services.kit.service import add_routes, service_app, state_dependency

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "idpsim_sid"
DEFAULT_LEVEL = "loa3"

LOGINS = Counter("idpsim_logins_total", "BankID (test) page outcomes", ["outcome"])
TOKENS = Counter("idpsim_token_requests_total", "Token endpoint answers", ["outcome"])

# Every HTML page: nothing from elsewhere, no framing, no caching of a page that shows personnummer.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

LOGOUT_UNVERIFIED = (
    "Utloggningen kunde inte kontrolleras: beskedet från tjänsten var inte giltigt. "
    "Stäng webbläsaren för att vara säker på att du är utloggad."
)

LEVEL_LABELS = {
    "loa2": "Tillitsnivå 2 (loa2)",
    "loa3": "Tillitsnivå 3 (loa3) – som BankID",
    "loa4": "Tillitsnivå 4 (loa4)",
}


class PersonBody(Frozen):
    personnummer: str = Field(description="12 digits, no dash")
    given_name: str
    family_name: str
    name: str
    birthdate: date
    note: str | None = Field(description="Testpatient, Under 16 år, or null")
    sub: str = Field(description="The `sub` this person gets")


class RotationBody(Frozen):
    current_kid: str
    published_kids: list[str]


class PendingBody(Frozen):
    pending: IdTokenOverrides | None


def _today() -> date:
    return datetime.now(UTC).date()


router = APIRouter()
sim_router = APIRouter()  # /sim/: only where knobs are enabled (never in production)
Sim = Annotated[IdpSim, Depends(state_dependency(IdpSim))]


def page(sim: IdpSim, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return sim.templates.TemplateResponse(request, name, context, status_code=status_code, headers=PAGE_HEADERS)


def error_page(sim: IdpSim, request: Request, error: OAuth2Error, explanation: str | None = None) -> Response:
    context = {"explanation": explanation or _explain(error), "error": error}
    return page(sim, request, "error.html", context, status_code=400)


def login_page(
    sim: IdpSim,
    request: Request,
    transaction: Transaction,
    *,
    chosen: str | None = None,
    typed: str = "",
    level: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    context = {
        "txn": transaction.txn,
        "persons": listed_persons(_today()),
        "chosen": chosen,
        "typed": typed,
        "level": level or _requested_level(transaction) or DEFAULT_LEVEL,
        "levels": LEVEL_LABELS,
        "client_id": sim.settings.client_id,
        "errors": errors or {},
    }
    return page(sim, request, "authorize.html", context, status_code=400 if errors else 200)


# --- discovery and keys --------------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration", tags=["oidc"], summary="OpenID Provider metadata")
async def discovery(sim: Sim) -> dict[str, Any]:
    return {
        "issuer": sim.settings.issuer,
        "authorization_endpoint": sim.provider.url("/authorize"),
        "token_endpoint": sim.provider.url("/token"),
        "userinfo_endpoint": sim.provider.url("/userinfo"),
        "jwks_uri": sim.provider.url("/jwks"),
        "end_session_endpoint": sim.provider.url("/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(SCOPES),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "sid",
            "at_hash",
            *PERSON_CLAIMS,
        ],
        "acr_values_supported": list(ACR_VALUES),
        "ui_locales_supported": ["sv"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


@router.get("/jwks", tags=["oidc"], summary="The published signing keys (current first)")
async def jwks(sim: Sim) -> JSONResponse:
    return JSONResponse(sim.provider.keys.jwks(), headers={"Cache-Control": "no-cache"})


# --- authorization: the BankID (test) page ------------------------------------------------------------


async def begin(sim: IdpSim, request: Request, items: list[tuple[str, str]]) -> Response:
    oauth_request = SimRequest(request.method, sim.provider.url("/authorize"), items, request.headers)
    try:
        transaction = sim.provider.begin(oauth_request)
    except OAuth2Error as error:
        LOGINS.labels(f"refused_{error.error}").inc()
        log.info("idpsim.authorize.refused", error=error.error, redirected=bool(error.redirect_uri))
        if error.redirect_uri:
            return to_response(*error())
        return error_page(sim, request, error)
    return login_page(sim, request, transaction)


@router.get(
    "/authorize",
    tags=["oidc"],
    summary="Authorization endpoint: validates the request and shows the BankID (test) page",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, 302: {"description": "Error redirected to the client"}},
)
async def authorize(sim: Sim, request: Request) -> Response:
    return await begin(sim, request, list(request.query_params.multi_items()))


@router.post(
    "/authorize",
    tags=["oidc"],
    summary="The BankID (test) form (fields txn, personnummer, acr); without txn, a POSTed authorization request",
    response_class=Response,
)
async def authorize_post(sim: Sim, request: Request) -> Response:
    form = await request.form()
    if "txn" not in form:
        return await begin(sim, request, [(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    return await complete(sim, request, form)


@router.post("/authorize/complete", tags=["oidc"], summary="The BankID (test) form", response_class=Response)
async def authorize_complete(sim: Sim, request: Request) -> Response:
    return await complete(sim, request, await request.form())


async def complete(sim: IdpSim, request: Request, form: FormData) -> Response:
    txn = _field(form, "txn")
    transaction = sim.provider.transaction(txn)
    if transaction is None:
        LOGINS.labels("unknown_transaction").inc()
        return page(sim, request, "expired.html", {}, status_code=400)
    if _field(form, "action") == "avbryt":
        LOGINS.labels("cancelled").inc()
        log.info("idpsim.login.cancelled", client_id=sim.settings.client_id)
        response, _ = sim.provider.complete(transaction, None, None)
        return response

    chosen = _field(form, "personnummer")
    typed = _field(form, "annat_personnummer")
    level = (_field(form, "acr") or DEFAULT_LEVEL).removeprefix(LOA_PREFIX)
    listed = {p.personnummer for p in listed_persons(_today())}
    # A typed number wins; a number POSTed as `personnummer` that is not a listed person counts as typed.
    if not typed and chosen not in listed:
        typed, chosen = chosen, ""
    errors: dict[str, str] = {}
    person: TestPerson | None = None
    if not (typed or chosen):
        errors["person-1"] = "Välj en testperson eller skriv ett personnummer."
    else:
        try:
            person = person_for(parse_personal_number(typed or chosen, _today()), _today())
        except InvalidIdentifier as exc:
            errors["annat-personnummer"] = _swedish(exc)
    if level not in ASSURANCE_LEVELS:
        errors["acr"] = "Välj en tillitsnivå: loa2, loa3 eller loa4."
    if errors or person is None:
        LOGINS.labels("invalid_input").inc()
        log.info("idpsim.login.invalid_input", fields=sorted(errors))
        return login_page(
            sim,
            request,
            transaction,
            chosen=chosen or None,
            typed=typed,
            level=level if level in ASSURANCE_LEVELS else None,
            errors=errors,
        )
    response, authentication = sim.provider.complete(transaction, person, level)
    issued = "code" in parse_qs(urlsplit(response.headers.get("location", "")).query)
    if authentication is not None and issued:
        LOGINS.labels("authenticated").inc()
        log.info("idpsim.login.authenticated", client_id=sim.settings.client_id, acr=level)
        response.set_cookie(SESSION_COOKIE, authentication.sid, httponly=True, samesite="lax", secure=sim.secure_cookie)
    else:
        LOGINS.labels("refused").inc()
    return response


# --- token, userinfo, logout ----------------------------------------------------------------------------


@router.post(
    "/token",
    tags=["oidc"],
    summary="Token endpoint: authorization_code with PKCE; client_secret_basic or client_secret_post",
)
async def token(sim: Sim, request: Request) -> Response:
    form = await request.form()
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    oauth_request = SimRequest("POST", sim.provider.url("/token"), items, request.headers)
    # On the event loop, like every other change of the in-memory state (an RS256 signature takes ~1 ms).
    response: Response = sim.provider.server.create_token_response(oauth_request)
    outcome = "issued" if response.status_code == 200 else "refused"
    TOKENS.labels(outcome).inc()
    log.info("idpsim.token.answered", outcome=outcome, status=response.status_code)
    return response


@router.api_route("/userinfo", methods=["GET", "POST"], tags=["oidc"], summary="The person claims of the bearer")
async def userinfo(sim: Sim, request: Request) -> Response:
    oauth_request = SimRequest(request.method, sim.provider.url("/userinfo"), [], request.headers)
    try:
        claims = sim.provider.userinfo(oauth_request)
    except OAuth2Error as error:
        return to_response(*error())
    return JSONResponse(claims, headers={"Cache-Control": "no-store"})


@router.api_route(
    "/logout",
    methods=["GET", "POST"],
    tags=["oidc"],
    summary="RP-initiated logout: ends the IdP session, then redirects to a registered post-logout URI",
    response_class=Response,
)
async def logout(sim: Sim, request: Request) -> Response:
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        items += [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    names = {k for k, _ in items}
    if "client_id" not in names and "id_token_hint" not in names:
        items.append(("client_id", sim.settings.client_id))  # the simulator has one client
    oauth_request = SimRequest(
        request.method, sim.provider.url("/logout"), items, request.headers, request.cookies.get(SESSION_COOKIE)
    )
    try:
        validated = sim.provider.server.validate_endpoint_request("end_session", oauth_request)
    except OAuth2Error as error:
        log.info("idpsim.logout.refused", error=error.error)
        return error_page(sim, request, error, LOGOUT_UNVERIFIED)
    response: Response | None = sim.provider.server.create_endpoint_response("end_session", validated)
    log.info("idpsim.logout.done", redirected=response is not None)
    if response is None:
        response = page(sim, request, "logged_out.html", {})
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=sim.secure_cookie)
    return response


# --- /sim/: tests and demos -------------------------------------------------------------------------------


@sim_router.post("/sim/rotate-keys", response_model=RotationBody, tags=["simulator"], summary="Rotate the signing key")
async def rotate_keys(sim: Sim) -> RotationBody:
    current = await rotate(sim)
    return RotationBody(current_kid=current, published_kids=[str(k.kid) for k in sim.provider.keys.published().keys])


@sim_router.post(
    "/sim/next-id-token",
    response_model=PendingBody,
    tags=["simulator"],
    summary="Tamper with the next ID token issued (only that one)",
)
async def next_id_token(sim: Sim, overrides: IdTokenOverrides) -> PendingBody:
    sim.provider.set_overrides(overrides)
    log.info("idpsim.knobs.set", **overrides.model_dump(exclude_defaults=True))
    return PendingBody(pending=overrides)


@sim_router.get(
    "/sim/next-id-token",
    response_model=PendingBody,
    tags=["simulator"],
    summary="The tampering waiting for the next ID token, if any",
)
async def pending_id_token(sim: Sim) -> PendingBody:
    return PendingBody(pending=sim.provider.pending_overrides())


@sim_router.get("/sim/persons", response_model=list[PersonBody], tags=["simulator"], summary="The test persons")
async def persons(sim: Sim) -> list[PersonBody]:
    return [
        PersonBody(
            personnummer=p.personnummer,
            given_name=p.given_name,
            family_name=p.family_name,
            name=p.name,
            birthdate=p.birthdate,
            note=p.note,
            sub=sim.provider.subject_of(p),
        )
        for p in listed_persons(_today())
    ]


@sim_router.delete("/sim/state", status_code=204, tags=["simulator"], summary="Forget codes, tokens and sessions")
async def clear_state(sim: Sim) -> Response:
    sim.provider.clear()
    log.info("idpsim.state.cleared")
    return Response(status_code=204)


def create_app(settings: IdpsimSettings | None = None, provider: Provider | None = None) -> FastAPI:
    """The simulator application; `settings` default to the environment."""
    settings = settings or IdpsimSettings()
    sim = IdpSim(
        settings=settings,
        provider=provider or Provider(settings),
        templates=Jinja2Templates(directory=HERE / "templates"),
        secure_cookie=settings.issuer.startswith("https://"),
    )
    app = service_app(
        "idp-sim",
        settings,
        functools.partial(bootstrap, sim=sim),
        log_name="idpsim",
        title="E-legitimation simulator (OpenID Connect)",
        summary="Plays BankID for the portal: an OpenID Connect provider with test persons.",
        max_body_bytes=settings.max_body_bytes,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    add_routes(app, router, *([sim_router] if settings.knobs_enabled else []))
    return app


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _requested_level(transaction: Transaction) -> str | None:
    """The first supported level among the client's acr_values, to preselect."""
    for value in (transaction.param("acr_values") or "").split():
        level = value.removeprefix(LOA_PREFIX)
        if level in ASSURANCE_LEVELS:
            return level
    return None


def _swedish(error: InvalidIdentifier) -> str:
    text = str(error)
    if text.startswith("must be"):
        return "Skriv personnumret med 12 siffror, till exempel 19121212-1212."
    if "future" in text:
        return "Personnumret har ett födelsedatum i framtiden."
    return "Personnumret är inte giltigt: datumet eller kontrollsiffran stämmer inte."


def _explain(error: OAuth2Error) -> str:
    description = str(error.description or "")
    if error.error == "invalid_client":
        return "Tjänsten som skickade dig hit är inte registrerad hos identitetsleverantören."
    if "Missing 'redirect_uri'" in description:
        return "Tjänsten angav inte vart du ska skickas tillbaka efter inloggningen."
    if "Redirect URI" in description:
        return "Adressen som tjänsten vill skicka tillbaka dig till är inte registrerad hos identitetsleverantören."
    return "Begäran från tjänsten var felaktig."
