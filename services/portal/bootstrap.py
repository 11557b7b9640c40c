"""The one place that wires the portal: its pools, the outbox relay, the read-model consumer, the session purge,
the clients of the consent service and the identity provider, and the use-case layer on top."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.kit.db import close_pool, create_pool, migrate
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.tasks import after, stop_all, supervise
from services.portal.consent_api import ConsentApi
from services.portal.consumers import READ_MODEL_TOPICS, read_model_consumer
from services.portal.deps import Portal
from services.portal.handlers import Handlers, purge_sessions
from services.portal.oidc import OidcClient
from services.portal.pdf import latin_fonts
from services.portal.settings import PortalSettings

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
Clock = Callable[[], datetime]
PURGE_EVERY_SECONDS = 60


@asynccontextmanager
async def running(
    settings: PortalSettings,
    clock: Clock,
    *,
    idp_transport: httpx.AsyncBaseTransport | None = None,
    consent_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Portal]:
    """The portal from start-up to shutdown."""
    configure_logging("portal", settings.log_level, settings.log_json)
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
        background, lambda: make_producer(settings, client_id="portal-relay"), lock_name=f"{settings.db_schema}.outbox"
    )
    consumer = read_model_consumer(settings, background)
    consent = ConsentApi(settings, consent_transport)
    handlers = Handlers(pool, settings, clock, consent, OidcClient(settings, idp_transport))
    portal = Portal(
        settings=settings,
        pool=pool,
        relay_pool=background,
        handlers=handlers,
        relay=relay,
        consumer=consumer,
        clock=clock,
    )

    async def topics() -> None:
        await ensure_topics(
            settings,
            [*READ_MODEL_TOPICS, PORTAL_DISPATCH_REQUESTS, *consumer.dead_letter_topics()],
            deadline_seconds=float("inf"),
        )

    async def purge() -> None:
        while True:
            await purge_sessions(background, settings, clock)
            await asyncio.sleep(PURGE_EVERY_SECONDS)

    await asyncio.to_thread(latin_fonts, settings.font_dir)  # the first PDF need not wait for it
    tasks = [asyncio.create_task(supervise("sessions", purge))]
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
        yield portal
    finally:
        await stop_all(tasks)
        handlers.close()
        await consent.close()
        await close_pool(pool)
        await close_pool(background)
        log.info("portal.stopped")


async def readiness(portal: Portal) -> dict[str, Any]:
    """The database (required), the relay and the read model (informative)."""
    checks: dict[str, Any] = await outbox_readiness(portal.relay_pool, portal.relay)
    checks["read_model"] = {"ok": portal.consumer.assigned, "required": False}
    return checks
