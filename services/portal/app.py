"""The citizen portal: login (OIDC), consent, the Swedish pages and the JSON API, and the lifespan that runs the
read-model consumer and the outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Pool, close_pool, create_pool, migrate
from services.kit.http import install_common
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.problems import problem_from_pydantic, problems_response
from services.kit.tasks import after, stop_all, supervise
from services.portal import repo
from services.portal.actions import Actions, NotFound
from services.portal.consent_api import ConsentApi, ConsentUnavailable
from services.portal.handlers import on_event
from services.portal.oidc import OidcClient
from services.portal.pdf import latin_fonts
from services.portal.security import (
    CsrfRefused,
    NoConsent,
    NotLoggedIn,
    SecurityHeadersMiddleware,
    Session,
    check_csrf,
    load_session,
)
from services.portal.settings import PortalSettings

log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Portal:
    """Everything a request handler needs, wired once in the lifespan."""

    settings: PortalSettings
    pool: Pool
    actions: Actions
    oidc: OidcClient
    consent: ConsentApi
    relay: OutboxRelay
    consumer: IdempotentConsumer
    templates: Jinja2Templates
    clock: Clock


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


async def logged_in(request: Request, *, extend: bool = False) -> Session:
    """The request's session; NotLoggedIn if there is none (or it timed out)."""
    portal = portal_of(request)
    session = await load_session(request, portal.pool, portal.settings, portal.clock(), extend=extend)
    if session is None:
        raise NotLoggedIn
    request.state.session = session
    return session


async def consented(request: Request) -> Session:
    """A session of a citizen who has given consent; NoConsent otherwise."""
    session = await logged_in(request)
    if not session.consent_given:
        raise NoConsent
    return session


async def changing(request: Request, *, need_consent: bool = True, extend: bool = False) -> Session:
    """A session allowed to change state: logged in, consent given (unless not needed) and the CSRF checks."""
    session = await logged_in(request, extend=extend)
    await check_csrf(request, session, portal_of(request).settings)
    if need_consent and not session.consent_given:
        raise NoConsent
    return session


def create_app(
    settings: PortalSettings | None = None,
    clock: Clock = _utc_now,
    *,
    idp_transport: httpx.AsyncBaseTransport | None = None,
    consent_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or PortalSettings()
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("portal", settings.log_level, settings.log_json)
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
        pool = await create_pool(
            settings.database_url, settings.db_schema, application="portal", max_size=settings.db_pool_size
        )
        relay = OutboxRelay(
            pool, lambda: make_producer(settings, client_id="portal-relay"), lock_name=f"{settings.db_schema}.outbox"
        )
        consumer = IdempotentConsumer(
            settings, pool, name="portal-read-model", topics=[CONSENT_RELEASED, DISPATCH_OUTCOMES], handler=on_event
        )
        consent = ConsentApi(settings, consent_transport)
        app.state.portal = Portal(
            settings=settings,
            pool=pool,
            actions=Actions(pool, settings, clock),
            oidc=OidcClient(settings, idp_transport),
            consent=consent,
            relay=relay,
            consumer=consumer,
            templates=templates,
            clock=clock,
        )

        async def topics() -> None:
            await ensure_topics(
                settings,
                [CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS, *consumer.dead_letter_topics()],
                deadline_seconds=float("inf"),
            )

        async def purge_sessions() -> None:
            while True:
                now = clock()
                await repo.purge_sessions(
                    pool,
                    now - timedelta(seconds=settings.session_idle_seconds),
                    now - timedelta(seconds=settings.pre_login_seconds),
                )
                await asyncio.sleep(60)

        await asyncio.to_thread(latin_fonts, settings.font_dir)  # the first PDF need not wait for it
        tasks = [asyncio.create_task(supervise("sessions", purge_sessions))]
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(supervise("relay", after(topics, relay.run))))
        if settings.consumer_enabled:
            tasks.append(asyncio.create_task(supervise("read-model", after(topics, consumer.run))))
        log.info("portal.started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            await stop_all(tasks)
            await consent.close()
            await close_pool(pool)
            log.info("portal.stopped")

    app = FastAPI(
        title="Mina intyg – portal",
        version="1.0.0",
        summary="Invånarens intyg: läsa, skriva ut, anpassa för arbetsgivaren, skicka till Försäkringskassan.",
        lifespan=lifespan,
        docs_url=None,  # the CDN-loaded docs page cannot run under our CSP; /openapi.json is served
        redoc_url=None,
    )

    async def readiness() -> dict[str, Any]:
        portal = app.state.portal
        checks: dict[str, Any] = await outbox_readiness(portal.pool, portal.relay)
        checks["read_model"] = {"ok": portal.consumer.assigned, "required": False}
        return checks

    install_common(app, readiness, max_body_bytes=64 * 1024)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    from services.portal.api import router as api_router
    from services.portal.web import router as web_router

    app.include_router(web_router)
    app.include_router(api_router)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def page(request: Request, name: str, status: int, **context: Any) -> Response:
        return templates.TemplateResponse(
            request, name, {"settings": settings, "session": None, **context}, status_code=status
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [problem_from_pydantic(e) for e in exc.errors()]
        if is_api(request):
            return problems_response(problems)
        fields = ", ".join(sorted({p.path for p in problems}))
        message = f"Något i formuläret saknas eller är felaktigt ({fields}). Gå tillbaka och försök igen."
        return page(request, "error.html", 422, title="Uppgifterna behöver kompletteras", message=message)

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "inte inloggad"}, status_code=401)
        return RedirectResponse("/?inloggning=kravs", status_code=303)

    @app.exception_handler(NoConsent)
    async def no_consent(request: Request, _exc: NoConsent) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "samtycke saknas: ge samtycke via /api/v1/consent"}, status_code=403)
        return RedirectResponse("/samtycke", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        log.warning("portal.csrf.refused", reason=str(exc), path=request.url.path)
        if is_api(request):
            return JSONResponse({"detail": f"förfrågan nekad: {exc}"}, status_code=403)
        return page(request, "error.html", 403, title="Förfrågan nekades",
                    message="Förfrågan kom inte från Mina intygs egna sidor och har inte utförts. "
                            "Gå tillbaka och försök igen.")  # fmt: skip

    @app.exception_handler(NotFound)
    async def not_found(request: Request, _exc: NotFound) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "intyget finns inte"}, status_code=404)
        return page(request, "error.html", 404, title="Intyget finns inte",
                    message="Intyget finns inte eller så har du inte behörighet att se det.")  # fmt: skip

    @app.exception_handler(ConsentUnavailable)
    async def consent_unavailable(request: Request, exc: ConsentUnavailable) -> Response:
        log.error("portal.consent.unavailable", error=str(exc))
        if is_api(request):
            return JSONResponse({"detail": "samtyckestjänsten svarar inte, försök igen om en stund"}, status_code=503)
        return page(request, "error.html", 503, title="Tjänsten är inte tillgänglig just nu",
                    message="Vi kunde inte nå samtyckestjänsten. Försök igen om en stund.")  # fmt: skip

    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app
