"""What the pages and the JSON API answer with besides their own data: the Jinja2 templates, PDF responses, and
the answer to each of the use-case layer's refusals (a Swedish page, or JSON under /api/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import structlog
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.kit.problems import problem_from_pydantic, problems_response
from services.kit.ratelimit import TooManyRequests
from services.kit.swedish import fmt_date, fmt_time
from services.portal.consent_api import ConsentUnavailable
from services.portal.deps import optional_session, settings_of
from services.portal.handlers import LoginFailed, NotFound
from services.portal.security import CSRF_FIELD, CsrfRefused, NoConsent, NotLoggedIn, Session

log = structlog.get_logger(__name__)

# Compiled once: no file-modification check on every render (the templates ship with the code).
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(),
        auto_reload=False,
    )
)
# Every time and date a page shows is Swedish time (services/kit/swedish.py).
TEMPLATES.env.filters.update(sv_time=fmt_time, sv_date=fmt_date)


def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> Response:
    """A page: the template with the settings, the session (if any) and the CSRF field's name."""
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {"settings": settings_of(request), "session": session, "csrf_field": CSRF_FIELD, **context},
        status_code=status,
    )


def refused(request: Request, title: str, message: str, status: int = 403) -> Response:
    """The error page."""
    return render(request, "error.html", None, status, title=title, message=message)


def pdf_response(data: bytes, filename: str, *, save: bool) -> Response:
    """A PDF to show (print) or to save as `filename`."""
    disposition = "attachment" if save else "inline"
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": f'{disposition}; filename="{filename}"'}
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    problems = [problem_from_pydantic(e) for e in exc.errors()]
    if _is_api(request):
        # The session first: FastAPI parses a JSON body before any dependency runs, so without this a caller who is
        # not logged in would learn what the route accepts.
        if await optional_session(request) is None:
            return await not_logged_in(request, NotLoggedIn())
        return problems_response(problems)
    fields = ", ".join(sorted({p.path for p in problems}))
    message = f"Något i formuläret saknas eller är felaktigt ({fields}). Gå tillbaka och försök igen."
    return refused(request, "Uppgifterna behöver kompletteras", message, 422)


async def bad_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 400 for a body it cannot parse (before any dependency): the session is checked first here too."""
    assert isinstance(exc, StarletteHTTPException)
    if _is_api(request) and exc.status_code == 400 and await optional_session(request) is None:
        return await not_logged_in(request, NotLoggedIn())
    return await http_exception_handler(request, exc)


async def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "inte inloggad"}, status_code=401)
    return RedirectResponse("/?inloggning=kravs", status_code=303)


async def no_consent(request: Request, _exc: NoConsent) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "samtycke saknas: ge samtycke via /api/v1/consent"}, status_code=403)
    return RedirectResponse("/samtycke", status_code=303)


async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
    log.warning("portal.csrf.refused", reason=str(exc), path=request.url.path)
    if _is_api(request):
        return JSONResponse({"detail": f"förfrågan nekad: {exc}"}, status_code=403)
    message = "Förfrågan kom inte från Mina intygs egna sidor och har inte utförts. Gå tillbaka och försök igen."
    return refused(request, "Förfrågan nekades", message, 403)


async def not_found(request: Request, _exc: NotFound) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "intyget finns inte"}, status_code=404)
    message = "Intyget finns inte eller så har du inte behörighet att se det."
    return refused(request, "Intyget finns inte", message, 404)


async def consent_unavailable(request: Request, exc: ConsentUnavailable) -> Response:
    log.error("portal.consent.unavailable", error=str(exc))
    if _is_api(request):
        return JSONResponse({"detail": "samtyckestjänsten svarar inte, försök igen om en stund"}, status_code=503)
    message = "Vi kunde inte nå samtyckestjänsten. Försök igen om en stund."
    return refused(request, "Tjänsten är inte tillgänglig just nu", message, 503)


async def too_many(request: Request, exc: TooManyRequests) -> Response:
    """429 with Retry-After: the problem body for the API, a Swedish page for the browser."""
    log.warning("portal.limit.reached", limit=exc.what, path=request.url.path)
    headers = {"Retry-After": str(exc.retry_after)}
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)
    message = f"Du har gjort detta många gånger på kort tid. Vänta {exc.retry_after} sekunder och försök igen."
    response = refused(request, "För många försök", message, 429)
    response.headers.update(headers)
    return response


async def login_failed(request: Request, exc: LoginFailed) -> Response:
    return refused(request, exc.title, exc.message, exc.status)


def install_error_answers(app: FastAPI) -> None:
    """Answer the refusals of the deps and the use-case layer the same way on every route."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(StarletteHTTPException)(bad_request)
    app.exception_handler(NotLoggedIn)(not_logged_in)
    app.exception_handler(NoConsent)(no_consent)
    app.exception_handler(CsrfRefused)(csrf_refused)
    app.exception_handler(NotFound)(not_found)
    app.exception_handler(ConsentUnavailable)(consent_unavailable)
    app.exception_handler(LoginFailed)(login_failed)
    app.exception_handler(TooManyRequests)(too_many)
