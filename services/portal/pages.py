"""The Swedish pages: login and logout, consent, Mina intyg, Intyg with its actions, Om dina uppgifter."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.kit.text import Line, Message
from services.portal.deps import (
    CertId,
    Changing,
    ChangingWithoutConsent,
    Consented,
    CorrelationId,
    Extending,
    ExtractAllowance,
    HandlersDep,
    LoggedIn,
    LoginAllowance,
    MaybeSession,
    PdfAllowance,
    SettingsDep,
    consented_list,
)
from services.portal.domain import FKASSA, RECIPIENT_NAMES, group_by_year
from services.portal.handlers import NotFound, SendRefused
from services.portal.responses import pdf_response, refused, render
from services.portal.security import LOGIN_COOKIE, SESSION_COOKIE, cookie_header
from services.portal.views import STATUS_FILTERS, filter_items

router = APIRouter(include_in_schema=False)


# --- Start, login, logout ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def start(request: Request, session: MaybeSession) -> Response:
    if session is not None:
        return RedirectResponse("/intyg" if session.consent_given else "/samtycke", status_code=303)
    return render(request, "start.html", None, required=request.query_params.get("inloggning") == "kravs")


@router.get("/login", dependencies=[LoginAllowance])
async def login(handlers: HandlersDep, settings: SettingsDep) -> Response:
    """Start a login: a pre-login session holds state, nonce and PKCE verifier; the browser goes to the IdP."""
    started = await handlers.start_login()
    response = RedirectResponse(started.url, status_code=303)
    response.headers.append(
        "set-cookie", cookie_header(LOGIN_COOKIE, started.token, max_age=settings.pre_login_seconds)
    )
    return response


@router.get("/auth/callback")
async def callback(request: Request, handlers: HandlersDep) -> Response:
    """The IdP's answer: check state, trade the code, validate the ID token, start a new session."""
    cookies = request.cookies
    done = await handlers.complete_login(cookies.get(LOGIN_COOKIE), request.query_params, cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/intyg" if done.consent_given else "/samtycke", status_code=303)
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0))
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, done.session_token, max_age=None))
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_page(request: Request, session: MaybeSession) -> Response:
    if session is None:
        return RedirectResponse("/utloggad", status_code=303)
    return render(request, "logout.html", session)


@router.post("/logout")
async def logout(session: ChangingWithoutConsent, handlers: HandlersDep) -> Response:
    """End the session here and at the identity provider."""
    url = await handlers.logout(session)
    response = RedirectResponse(url or "/utloggad", status_code=303)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", max_age=0))
    return response


@router.get("/utloggad", response_class=HTMLResponse)
async def logged_out(request: Request) -> Response:
    return render(request, "logged_out.html", None)


@router.post("/session/extend")
async def extend(_session: Extending, settings: SettingsDep) -> Response:
    """The idle-timeout warning's "stay logged in": any authenticated request restarts the idle clock."""
    return JSONResponse({"idle_seconds": settings.session_idle_seconds})


# --- Consent ----------------------------------------------------------------------------------------------


@router.get("/samtycke", response_class=HTMLResponse)
async def consent_page(request: Request, session: LoggedIn, handlers: HandlersDep) -> Response:
    return render(request, "consent.html", session, consent=await handlers.consent(session))


@router.post("/samtycke")
async def give_consent(session: ChangingWithoutConsent, handlers: HandlersDep) -> Response:
    await handlers.give_consent(session)
    # Older certificates were removed after the retention: the list tells the citizen they may exist at the unit.
    purged = (await handlers.consent(session)).get("held_purged_at")
    return RedirectResponse("/intyg?aldre_intyg=1" if purged else "/intyg", status_code=303)


@router.get("/installningar", response_class=HTMLResponse)
async def settings_page(request: Request, session: LoggedIn, handlers: HandlersDep) -> Response:
    return render(request, "settings.html", session, consent=await handlers.consent(session))


@router.post("/installningar/aterkalla")
async def withdraw_consent(session: Changing, handlers: HandlersDep) -> Response:
    await handlers.withdraw_consent(session)
    return RedirectResponse("/samtycke?aterkallat=1", status_code=303)


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
        items,
        year=_int_or_none(q.get("ar")),
        cert_type=q.get("typ") or None,
        care_unit=q.get("vardenhet") or None,
        status=q.get("status") or None,
    )
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
async def certificate_page(
    request: Request, certificate_id: CertId, session: Consented, handlers: HandlersDep
) -> Response:
    view = await handlers.certificate(session, certificate_id)
    sent = request.query_params.get("skickat") == "1"
    return render(request, "certificate.html", session, view=view, fkassa=RECIPIENT_NAMES[FKASSA], sent=sent)


@router.get("/intyg/{certificate_id}/skriv-ut", response_class=HTMLResponse)
async def print_page(request: Request, certificate_id: CertId, session: Consented, handlers: HandlersDep) -> Response:
    view = await handlers.certificate(session, certificate_id, action="")
    return render(request, "print.html", session, view=view)


@router.get("/intyg/{certificate_id}/pdf", dependencies=[PdfAllowance])
async def certificate_pdf(
    certificate_id: CertId, session: Consented, handlers: HandlersDep, spara: bool = False
) -> Response:
    data, filename = await handlers.pdf(session, certificate_id, save=spara)
    return pdf_response(data, filename, save=spara)


@router.get("/intyg/{certificate_id}/anpassa", response_class=HTMLResponse)
async def employer_page(
    request: Request, certificate_id: CertId, session: Consented, handlers: HandlersDep
) -> Response:
    view = await handlers.certificate(session, certificate_id, action="employer_copy_preview")
    if not view.employer_fields and view.item.type not in ("LISJP", "AG7804"):
        raise NotFound(certificate_id)
    include = request.query_params.getlist("visa")
    preview, left_out = handlers.employer_preview(view, include)
    return render(request, "employer.html", session, view=view, include=include, preview=preview, left_out=left_out)


@router.get("/intyg/{certificate_id}/anpassa/pdf", dependencies=[PdfAllowance])
async def employer_pdf(
    request: Request, certificate_id: CertId, session: Consented, handlers: HandlersDep, spara: bool = False
) -> Response:
    include = request.query_params.getlist("visa")
    data, filename = await handlers.employer_pdf(session, certificate_id, include, save=spara)
    return pdf_response(data, filename, save=spara)


@router.get("/intyg/{certificate_id}/skicka", response_class=HTMLResponse)
async def send_page(request: Request, certificate_id: CertId, session: Consented, handlers: HandlersDep) -> Response:
    """Preview of what is sent and the confirmation; the idempotency key is minted here, so a double click or a
    resubmitted form sends once."""
    view = await handlers.certificate(session, certificate_id, action="send_preview")
    key = handlers.new_idempotency_key()
    return render(request, "send.html", session, view=view, key=key, recipient=RECIPIENT_NAMES[FKASSA])


@router.post("/intyg/{certificate_id}/skicka")
async def send(
    request: Request,
    certificate_id: CertId,
    idempotency_key: Annotated[str, Form()],
    session: Changing,
    handlers: HandlersDep,
    correlation_id: CorrelationId,
) -> Response:
    try:
        key = UUID(idempotency_key)
    except ValueError:
        return refused(request, "Felaktig förfrågan", "Skicka-formuläret var ofullständigt. Försök igen.", 400)
    try:
        await handlers.send(session, certificate_id, FKASSA, key, correlation_id)
    except SendRefused:
        why = "Intyget har redan skickats, är på väg, har ersatts eller tas inte emot av mottagaren."
        return refused(request, "Intyget kan inte skickas", why, 409)
    return RedirectResponse(f"/intyg/{certificate_id}?skickat=1", status_code=303)


@router.post("/intyg/{certificate_id}/arkivera")
async def archive(certificate_id: CertId, session: Changing, handlers: HandlersDep) -> Response:
    await handlers.set_archived(session, certificate_id, True)
    return RedirectResponse("/intyg?arkiverat=1", status_code=303)


@router.post("/intyg/{certificate_id}/aterstall")
async def restore(certificate_id: CertId, session: Changing, handlers: HandlersDep) -> Response:
    await handlers.set_archived(session, certificate_id, False)
    return RedirectResponse(f"/intyg/{certificate_id}", status_code=303)


# --- Om dina uppgifter ------------------------------------------------------------------------------------


@router.get("/om-dina-uppgifter", response_class=HTMLResponse)
async def about(request: Request, session: Consented, handlers: HandlersDep) -> Response:
    entries = await handlers.access_log(session)
    mine = await handlers.requests(session)
    received = request.query_params.get("mottaget")
    retention_days = (await handlers.consent(session)).get("held_retention_days")
    return render(
        request,
        "about.html",
        session,
        access_log=entries,
        requests=mine,
        received=received,
        retention_days=retention_days,
    )


@router.get("/om-dina-uppgifter/utdrag.json", dependencies=[ExtractAllowance])
async def extract_json(session: Consented, handlers: HandlersDep) -> Response:
    data = await handlers.extract(session)
    return Response(
        orjson.dumps(data, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="mina-intyg-utdrag.json"'},
    )


@router.get("/om-dina-uppgifter/utdrag.pdf", dependencies=[ExtractAllowance, PdfAllowance])
async def extract_pdf(session: Consented, handlers: HandlersDep) -> Response:
    data = await handlers.extract_pdf(session)
    return pdf_response(data, "mina-intyg-utdrag.pdf", save=True)


@router.post("/om-dina-uppgifter/begaran")
async def citizen_request(
    kind: Annotated[str, Form(pattern="^(RECTIFICATION|BLOCKING)$")],
    message: Annotated[Message, Form(min_length=1, max_length=2000)],
    session: Changing,
    handlers: HandlersDep,
    certificate_id: Annotated[Line, Form(max_length=64)] = "",
) -> Response:
    request_id = await handlers.add_request(session, kind, certificate_id or None, message)
    return RedirectResponse(f"/om-dina-uppgifter?mottaget={request_id}", status_code=303)


@router.get("/hjalp", response_class=HTMLResponse)
async def guidance(request: Request, session: MaybeSession) -> Response:
    return render(request, "help.html", session)
