"""The citizen portal: login (OIDC), consent, the Swedish pages and the JSON API, and the lifespan that runs the
read-model consumer and the outbox relay."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jinja2
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
from services.kit.telemetry import configure_telemetry
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
    session_from_row,
    session_id_hash,
    session_window,
)
from services.portal.settings import PortalSettings
from services.portal.views import ListItem, list_item

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
    pool: Pool  # for requests
    relay_pool: Pool  # for the relay, the consumer and housekeeping
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


async def consented_list(request: Request) -> tuple[Session, list[ListItem]]:
    """`consented` and the citizen's certificates, newest first, with the listing's access-log row: one statement,
    so one database round trip for the whole check (the session is still read from the database every time)."""
    portal = portal_of(request)
    id_hash = session_id_hash(request)
    if id_hash is None:
        raise NotLoggedIn
    now = portal.clock()
    rows = await repo.session_and_list(portal.pool, id_hash, now, *session_window(portal.settings, now))
    if not rows:
        raise NotLoggedIn
    session = session_from_row(id_hash, rows[0])
    request.state.session = session
    if not session.consent_given:
        raise NoConsent
    days = portal.settings.new_badge_days
    return session, [list_item(r, now, days) for r in rows if r["id"] is not None]


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
    # Templates are compiled once: no file-modification check on every render (they ship with the code).
    templates = Jinja2Templates(
        env=jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape(), auto_reload=False
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("portal", settings.log_level, settings.log_json)
        configure_telemetry("portal", settings)
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
        # Requests use a pool without asyncpg's reset query on release (they leave no session state behind): one
        # round trip per query instead of two. The relay (a session advisory lock), the consumer and the session
        # purge keep the default, resetting pool.
        pool = await create_pool(
            settings.database_url,
            settings.db_schema,
            application="portal",
            max_size=settings.db_pool_size,
            reset_session=False,
        )
        background = await create_pool(settings.database_url, settings.db_schema, application="portal-bg", max_size=4)
        relay = OutboxRelay(
            background,
            lambda: make_producer(settings, client_id="portal-relay"),
            lock_name=f"{settings.db_schema}.outbox",
        )
        consumer = IdempotentConsumer(
            settings,
            background,
            name="portal-read-model",
            topics=[CONSENT_RELEASED, DISPATCH_OUTCOMES],
            handler=on_event,
        )
        consent = ConsentApi(settings, consent_transport)
        app.state.portal = Portal(
            settings=settings,
            pool=pool,
            relay_pool=background,
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
                    background,
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
        # Everything alive after start-up (modules, templates, fonts) leaves the garbage collector's generations:
        # full collections then walk only what requests allocate, shorter pauses in the latency tail.
        gc.collect()
        gc.freeze()
        log.info("portal.started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            await stop_all(tasks)
            app.state.portal.actions.close()
            await consent.close()
            await close_pool(pool)
            await close_pool(background)
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
        checks: dict[str, Any] = await outbox_readiness(portal.relay_pool, portal.relay)
        checks["read_model"] = {"ok": portal.consumer.assigned, "required": False}
        return checks

    from services.portal.api import router as api_router
    from services.portal.web import LIST_ROUTES
    from services.portal.web import router as web_router

    app.router.routes.extend(LIST_ROUTES)  # first: the busiest page is matched without trying 30 other routes
    install_common(app, readiness, max_body_bytes=64 * 1024)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

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
