"""The one place that wires the portal (on the kit's service host): its two pools, the outbox relay, the
read-model consumer, the session purge, the clients of the consent service and the identity provider, and the
use-case layer the routers call."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.kit.service import Host
from services.portal.consent_api import ConsentApi
from services.portal.consumers import READ_MODEL_TOPICS, read_model_consumer
from services.portal.deps import Limits, Portal
from services.portal.handlers import Handlers, purge_sessions
from services.portal.oidc import OidcClient
from services.portal.pdf import latin_fonts
from services.portal.settings import PortalSettings

MIGRATIONS = Path(__file__).parent / "migrations"
Clock = Callable[[], datetime]
PURGE_EVERY_SECONDS = 60


async def bootstrap(
    host: Host,
    *,
    settings: PortalSettings,
    clock: Clock,
    idp_transport: httpx.AsyncBaseTransport | None = None,
    consent_transport: httpx.AsyncBaseTransport | None = None,
) -> Portal:
    """Wire the portal; the host runs, supervises and stops what is registered here, and closes the pools."""
    # Requests use a pool without asyncpg's reset query on release (they leave no session state behind): one
    # round trip per query instead of two. The relay (a session advisory lock), the consumer and the session
    # purge keep a resetting pool of their own.
    pool = await host.pool(application="portal", max_size=settings.db_pool_size, reset_session=False)
    background = await host.pool(application="portal-bg", max_size=4)

    async def purge() -> None:
        while True:
            await purge_sessions(background, settings, clock)
            await asyncio.sleep(PURGE_EVERY_SECONDS)

    host.task("sessions", purge)
    host.topics([*READ_MODEL_TOPICS, PORTAL_DISPATCH_REQUESTS])
    host.relay(background, enabled=settings.relay_enabled)
    consumer = read_model_consumer(settings, background)
    host.consumer(consumer, task="read-model", enabled=settings.consumer_enabled, check="read_model")
    consent = ConsentApi(settings, consent_transport)
    host.on_stop(consent.close)
    handlers = Handlers(pool, settings, clock, consent, OidcClient(settings, idp_transport))
    host.on_stop(handlers.close)
    await asyncio.to_thread(latin_fonts, settings.font_dir)  # the first PDF need not wait for it
    # Everything alive after start-up (modules, templates, fonts) leaves the garbage collector's generations:
    # full collections then walk only what requests allocate, shorter pauses in the latency tail.
    gc.collect()
    gc.freeze()
    limits = Limits.of(settings)
    return Portal(settings=settings, pool=pool, relay_pool=background, handlers=handlers, clock=clock, limits=limits)
