"""The citizen portal's FastAPI app: the pages, the JSON API and the operational routes, on the kit's service host
with the state `bootstrap` wires."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.kit.service import service_app
from services.portal import api, pages, riv
from services.portal.bootstrap import MIGRATIONS, bootstrap
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
    wiring = functools.partial(
        bootstrap, settings=settings, clock=clock, idp_transport=idp_transport, consent_transport=consent_transport
    )
    app = service_app(
        "portal",
        settings,
        wiring,
        migrations=MIGRATIONS,
        title="Mina intyg – portal",
        summary="Invånarens intyg: läsa, skriva ut, anpassa för arbetsgivaren, skicka till Försäkringskassan.",
        max_body_bytes=64 * 1024,
        docs_url=None,  # the CDN-loaded docs page cannot run under our CSP; /openapi.json is served
        redoc_url=None,
    )
    app.router.routes[0:0] = pages.LIST_ROUTES  # first: the busiest page is matched without trying 40 other routes
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.router.routes.extend(riv.ROUTES)  # Försäkringskassan's fetch: answers only over the mutual-TLS listener
    install_error_answers(app)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app
