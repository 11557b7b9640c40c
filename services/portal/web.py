"""The Swedish pages: login and logout, consent, Mina intyg, Intyg with its actions, Om dina uppgifter."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.kit.citizen import citizen_ref
from services.portal import repo
from services.portal.actions import NotFound
from services.portal.app import Portal, changing, consented, consented_list, logged_in, portal_of
from services.portal.domain import FKASSA, RECIPIENT_NAMES, group_by_year
from services.portal.handlers import SendRefused
from services.portal.oidc import LoginRefused, refusal_page
from services.portal.security import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    cookie_header,
    load_session,
    new_token,
    token_hash,
)
from services.portal.views import STATUS_FILTERS, filter_items

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> Response:
    portal = portal_of(request)
    return portal.templates.TemplateResponse(
        request,
        name,
        {"settings": portal.settings, "session": session, "csrf_field": CSRF_FIELD, **context},
        status_code=status,
    )


def refused(request: Request, title: str, message: str, status: int = 403) -> Response:
    return render(request, "error.html", None, status, title=title, message=message)


# --- Start, login, logout ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    portal = portal_of(request)
    session = await load_session(request, portal.pool, portal.settings, portal.clock())
    if session is not None:
        return RedirectResponse("/intyg" if session.consent_given else "/samtycke", status_code=303)
    return render(request, "start.html", None, required=request.query_params.get("inloggning") == "kravs")


@router.get("/login")
async def login(request: Request) -> Response:
    """Start a login: a pre-login session holds state, nonce and PKCE verifier; the browser goes to the IdP."""
    portal = portal_of(request)
    token, state, nonce, verifier = new_token(), new_token(), new_token(), secrets.token_urlsafe(48)
    try:
        url = await portal.oidc.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
    except LoginRefused as exc:
        return login_refused(request, exc)
    await repo.create_pre_login(
        portal.pool, token_hash(token), csrf=new_token(), state=state, nonce=nonce, verifier=verifier,
        now=portal.clock(),
    )  # fmt: skip
    response = RedirectResponse(url, status_code=303)
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, token, max_age=portal.settings.pre_login_seconds))
    return response


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    """The IdP's answer: check state, trade the code, validate the ID token, start a new session."""
    portal = portal_of(request)
    params = request.query_params
    token = request.cookies.get(LOGIN_COOKIE)
    pre = await repo.take_pre_login(portal.pool, token_hash(token)) if token and len(token) < 100 else None
    again = "Försök logga in igen."
    if pre is None or (portal.clock() - pre["created_at"]).total_seconds() > portal.settings.pre_login_seconds:
        return refused(
            request, "Inloggningen misslyckades", f"Inloggningen hade gått ut eller kom inte härifrån. {again}", 400
        )
    if not secrets.compare_digest(params.get("state", ""), pre["oidc_state"]):
        log.warning("portal.login.refused", reason="state_mismatch")
        return refused(request, "Inloggningen misslyckades", f"Inloggningen kunde inte verifieras. {again}", 400)
    if "error" in params or not params.get("code"):
        log.info("portal.login.cancelled", error=params.get("error", "no_code")[:40])
        return refused(request, "Inloggningen avbröts", f"Inloggningen avbröts. {again}", 400)
    now = portal.clock()
    try:
        await portal.oidc.check_response_issuer(params.get("iss"))  # RFC 9207, before the code goes anywhere
        tokens = await portal.oidc.exchange(params["code"], pre["code_verifier"])
        identity = await portal.oidc.identity(tokens, pre["oidc_nonce"], now=int(now.timestamp()), today=now.date())
    except LoginRefused as exc:
        return login_refused(request, exc)
    ref = citizen_ref(identity.personnummer, portal.settings.citizen_ref_key.get_secret_value())
    consent = await portal.consent.get(ref)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous and len(previous) < 100:
        await repo.delete_session(portal.pool, token_hash(previous))  # one browser, one session
    session_token = new_token()
    await repo.create_session(
        portal.pool, token_hash(session_token), csrf=new_token(), citizen_ref=ref,
        personnummer=identity.personnummer, given_name=identity.given_name, family_name=identity.family_name,
        id_token="", consent_given=consent["state"] == "given", now=now,  # the ID token is not kept
    )  # fmt: skip
    log.info("portal.login.succeeded", citizen_ref=ref, loa=identity.loa)
    response = RedirectResponse("/intyg" if consent["state"] == "given" else "/samtycke", status_code=303)
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0))
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, session_token, max_age=None))
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_page(request: Request) -> Response:
    portal = portal_of(request)
    session = await load_session(request, portal.pool, portal.settings, portal.clock())
    if session is None:
        return RedirectResponse("/utloggad", status_code=303)
    return render(request, "logout.html", session)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session here and at the identity provider."""
    session = await changing(request, need_consent=False)
    portal = portal_of(request)
    await repo.delete_session(portal.pool, session.id_hash)
    log.info("portal.logout", citizen_ref=session.citizen_ref)
    url = await portal.oidc.end_session_url(f"{portal.settings.public_origin}/")
    response = RedirectResponse(url or "/utloggad", status_code=303)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", max_age=0))
    return response


def login_refused(request: Request, exc: LoginRefused) -> Response:
    """A refused login: its own log event per kind of failure (no personnummer), Swedish text for the citizen."""
    page = refusal_page(exc)
    log.warning(page.event, reason=exc.code, retry=exc.retry)
    return refused(request, page.title, exc.message, page.status)


@router.get("/utloggad", response_class=HTMLResponse)
async def logged_out(request: Request) -> Response:
    return render(request, "logged_out.html", None)


@router.post("/session/extend")
async def extend(request: Request) -> Response:
    """The idle-timeout warning's "stay logged in": any authenticated request restarts the idle clock."""
    await changing(request, need_consent=False, extend=True)
    return JSONResponse({"idle_seconds": portal_of(request).settings.session_idle_seconds})


# --- Consent ----------------------------------------------------------------------------------------------


@router.get("/samtycke", response_class=HTMLResponse)
async def consent_page(request: Request) -> Response:
    session = await logged_in(request)
    return render(request, "consent.html", session)


@router.post("/samtycke")
async def give_consent(request: Request) -> Response:
    session = await changing(request, need_consent=False)
    portal = portal_of(request)
    await portal.consent.give(session.citizen_ref)
    await repo.set_session_consent(portal.pool, session.citizen_ref, True)
    log.info("portal.consent.given", citizen_ref=session.citizen_ref)
    return RedirectResponse("/intyg", status_code=303)


@router.get("/installningar", response_class=HTMLResponse)
async def settings_page(request: Request) -> Response:
    session = await logged_in(request)
    consent = await portal_of(request).consent.get(session.citizen_ref)
    return render(request, "settings.html", session, consent=consent)


@router.post("/installningar/aterkalla")
async def withdraw_consent(request: Request) -> Response:
    session = await changing(request)
    await withdraw(portal_of(request), session)
    return RedirectResponse("/samtycke?aterkallat=1", status_code=303)


async def withdraw(portal: Portal, session: Session) -> None:
    """Withdraw at the consent service, and remove the citizen's certificates here at once (the consumer does
    the same when citizen.data_withdrawn arrives)."""
    await portal.consent.withdraw(session.citizen_ref)
    async with portal.pool.acquire() as conn, conn.transaction():
        await repo.delete_citizen_data(conn, session.citizen_ref)
        await repo.set_session_consent(conn, session.citizen_ref, False)
    log.info("portal.consent.withdrawn", citizen_ref=session.citizen_ref)


# --- Mina intyg -------------------------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) == 4 else None


async def certificates(request: Request) -> Response:
    """Mina intyg (the busiest page): a plain Starlette route, matched before every other route (see `LIST_ROUTES`),
    without FastAPI's parameter machinery."""
    return await _list_page(request, archived=False)


async def archived_certificates(request: Request) -> Response:
    return await _list_page(request, archived=True)


async def _list_page(request: Request, *, archived: bool) -> Response:
    session, listed = await consented_list(request)
    q = request.query_params
    items = [i for i in listed if i.archived == archived]
    shown = filter_items(
        items, year=_int_or_none(q.get("ar")), cert_type=q.get("typ") or None,
        care_unit=q.get("vardenhet") or None, status=q.get("status") or None,
    )  # fmt: skip
    return render(
        request,
        "list.html",
        session,
        archived=archived,
        archived_notice=bool(q.get("arkiverat")),
        groups=group_by_year(shown),
        total=len(items),
        years=sorted({i.signed_at.year for i in items}, reverse=True),
        types=sorted({(i.type, i.type_name) for i in items}),
        units=sorted({(i.care_unit_hsa, i.care_unit_name) for i in items}, key=lambda u: u[1]),
        statuses=STATUS_FILTERS,
        chosen={k: q.get(k, "") for k in ("ar", "typ", "vardenhet", "status")},
    )


# Mounted by create_app ahead of all other routes: neither path can match any other route.
LIST_ROUTES = [
    Route("/intyg", certificates, methods=["GET"], include_in_schema=False),
    Route("/intyg/arkiverade", archived_certificates, methods=["GET"], include_in_schema=False),
]


@router.get("/intyg/{certificate_id}", response_class=HTMLResponse)
async def certificate_page(request: Request, certificate_id: str) -> Response:
    session = await consented(request)
    view = await portal_of(request).actions.certificate(session, certificate_id)
    return render(request, "certificate.html", session, view=view, fkassa=RECIPIENT_NAMES[FKASSA],
                  sent=request.query_params.get("skickat") == "1")  # fmt: skip


@router.get("/intyg/{certificate_id}/skriv-ut", response_class=HTMLResponse)
async def print_page(request: Request, certificate_id: str) -> Response:
    session = await consented(request)
    view = await portal_of(request).actions.certificate(session, certificate_id, action="")
    return render(request, "print.html", session, view=view)


@router.get("/intyg/{certificate_id}/pdf")
async def certificate_pdf(request: Request, certificate_id: str, spara: bool = False) -> Response:
    session = await consented(request)
    data, filename = await portal_of(request).actions.pdf(session, certificate_id, save=spara)
    return pdf_response(data, filename, save=spara)


def pdf_response(data: bytes, filename: str, *, save: bool) -> Response:
    disposition = "attachment" if save else "inline"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'{disposition}; filename="{filename}"'})  # fmt: skip


@router.get("/intyg/{certificate_id}/anpassa", response_class=HTMLResponse)
async def employer_page(request: Request, certificate_id: str) -> Response:
    session = await consented(request)
    actions = portal_of(request).actions
    view = await actions.certificate(session, certificate_id, action="employer_copy_preview")
    if not view.employer_fields and view.item.type not in ("LISJP", "AG7804"):
        raise NotFound(certificate_id)
    include = request.query_params.getlist("visa")
    preview, left_out = actions.employer_preview(view, include)
    return render(request, "employer.html", session, view=view, include=include, preview=preview,
                  left_out=left_out)  # fmt: skip


@router.get("/intyg/{certificate_id}/anpassa/pdf")
async def employer_pdf(request: Request, certificate_id: str, spara: bool = False) -> Response:
    session = await consented(request)
    include = request.query_params.getlist("visa")
    data, filename = await portal_of(request).actions.employer_pdf(session, certificate_id, include, save=spara)
    return pdf_response(data, filename, save=spara)


@router.get("/intyg/{certificate_id}/skicka", response_class=HTMLResponse)
async def send_page(request: Request, certificate_id: str) -> Response:
    """Preview of what is sent and the confirmation; the idempotency key is minted here, so a double click or a
    resubmitted form sends once."""
    session = await consented(request)
    actions = portal_of(request).actions
    view = await actions.certificate(session, certificate_id, action="send_preview")
    return render(request, "send.html", session, view=view, key=actions.new_idempotency_key(),
                  recipient=RECIPIENT_NAMES[FKASSA])  # fmt: skip


@router.post("/intyg/{certificate_id}/skicka")
async def send(request: Request, certificate_id: str, idempotency_key: Annotated[str, Form()]) -> Response:
    session = await changing(request)
    try:
        key = UUID(idempotency_key)
    except ValueError:
        return refused(request, "Felaktig förfrågan", "Skicka-formuläret var ofullständigt. Försök igen.", 400)
    try:
        await portal_of(request).actions.send(
            session, certificate_id, FKASSA, key, request.scope["state"]["correlation_id"]
        )
    except SendRefused:
        why = "Intyget har redan skickats, är på väg, har ersatts eller tas inte emot av mottagaren."
        return refused(request, "Intyget kan inte skickas", why, 409)
    return RedirectResponse(f"/intyg/{certificate_id}?skickat=1", status_code=303)


@router.post("/intyg/{certificate_id}/arkivera")
async def archive(request: Request, certificate_id: str) -> Response:
    session = await changing(request)
    await portal_of(request).actions.set_archived(session, certificate_id, True)
    return RedirectResponse("/intyg?arkiverat=1", status_code=303)


@router.post("/intyg/{certificate_id}/aterstall")
async def restore(request: Request, certificate_id: str) -> Response:
    session = await changing(request)
    await portal_of(request).actions.set_archived(session, certificate_id, False)
    return RedirectResponse(f"/intyg/{certificate_id}", status_code=303)


# --- Om dina uppgifter ------------------------------------------------------------------------------------


@router.get("/om-dina-uppgifter", response_class=HTMLResponse)
async def about(request: Request) -> Response:
    session = await consented(request)
    portal = portal_of(request)
    entries = await portal.actions.access_log(session)
    mine = await repo.requests(portal.pool, session.citizen_ref)
    return render(request, "about.html", session, access_log=entries, requests=mine,
                  received=request.query_params.get("mottaget"))  # fmt: skip


@router.get("/om-dina-uppgifter/utdrag.json")
async def extract_json(request: Request) -> Response:
    session = await consented(request)
    portal = portal_of(request)
    data = await portal.actions.extract(session, await portal.consent.get(session.citizen_ref))
    return Response(orjson.dumps(data, option=orjson.OPT_INDENT_2), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="mina-intyg-utdrag.json"'})  # fmt: skip


@router.get("/om-dina-uppgifter/utdrag.pdf")
async def extract_pdf(request: Request) -> Response:
    session = await consented(request)
    portal = portal_of(request)
    data = await portal.actions.extract_pdf(session, await portal.consent.get(session.citizen_ref))
    return pdf_response(data, "mina-intyg-utdrag.pdf", save=True)


@router.post("/om-dina-uppgifter/begaran")
async def citizen_request(
    request: Request,
    kind: Annotated[str, Form(pattern="^(RECTIFICATION|BLOCKING)$")],
    message: Annotated[str, Form(min_length=1, max_length=2000)],
    certificate_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    session = await changing(request)
    request_id = await portal_of(request).actions.add_request(session, kind, certificate_id or None, message)
    return RedirectResponse(f"/om-dina-uppgifter?mottaget={request_id}", status_code=303)


@router.get("/hjalp", response_class=HTMLResponse)
async def guidance(request: Request) -> Response:
    portal = portal_of(request)
    session = await load_session(request, portal.pool, portal.settings, portal.clock())
    return render(request, "help.html", session)
