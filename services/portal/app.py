"""The citizen portal's FastAPI app: the pages, the JSON API and the operational routes, on the state
`bootstrap.running` wires."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.kit.http import install_common
from services.portal import api, pages
from services.portal.bootstrap import MIGRATIONS, readiness, running
from services.portal.responses import install_error_answers
from services.portal.security import SecurityHeadersMiddleware
from services.portal.settings import PortalSettings

__all__ = ["MIGRATIONS", "create_app"]
STATIC = Path(__file__).parent / "static"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: PortalSettings | None = None,
    clock: Clock = _utc_now,
    *,
    idp_transport: httpx.AsyncBaseTransport | None = None,
    consent_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or PortalSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings, clock, idp_transport=idp_transport, consent_transport=consent_transport) as portal:
            app.state.portal = portal
            yield

    app = FastAPI(
        title="Mina intyg – portal",
        version="1.0.0",
        summary="Invånarens intyg: läsa, skriva ut, anpassa för arbetsgivaren, skicka till Försäkringskassan.",
        lifespan=lifespan,
        docs_url=None,  # the CDN-loaded docs page cannot run under our CSP; /openapi.json is served
        redoc_url=None,
    )

    async def ready() -> dict[str, Any]:
        return await readiness(app.state.portal)

    app.router.routes.extend(pages.LIST_ROUTES)  # first: the busiest page is matched without trying 30 other routes
    install_common(app, ready, max_body_bytes=64 * 1024)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    install_error_answers(app)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app
