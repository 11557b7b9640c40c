"""Dispatch: the lifespan that runs the consumer (released certificates and send requests), the senders and the
outbox relay, and a small read API of the ledger for operators."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI

from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS, dead_letter
from services.dispatch import repo
from services.dispatch.handlers import Clock, Dispatch, on_batch, on_event
from services.dispatch.sender import Sender
from services.dispatch.settings import DispatchSettings
from services.kit.consumer import IdempotentConsumer
from services.kit.db import close_pool, create_pool, migrate
from services.kit.http import install_common
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.tasks import after, stop_all, supervise
from services.kit.telemetry import configure_telemetry

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
CONSUMED_TOPICS = [CONSENT_RELEASED, PORTAL_DISPATCH_REQUESTS]


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def prepare(settings: DispatchSettings) -> None:
    """Migrate the schema and point the seeded Försäkringskassan entry at the configured endpoint."""
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    pool = await create_pool(settings.database_url, settings.db_schema, application="dispatch-prepare", max_size=1)
    try:
        await repo.set_endpoint(pool, "FKASSA", settings.fk_endpoint)
    finally:
        await close_pool(pool)


def create_app(settings: DispatchSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or DispatchSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("dispatch", settings.log_level, settings.log_json)
        configure_telemetry("dispatch", settings)
        await prepare(settings)
        pool = await create_pool(settings.database_url, settings.db_schema, application="dispatch", max_size=20)
        relay = OutboxRelay(
            pool, lambda: make_producer(settings, client_id="dispatch-relay"), lock_name=f"{settings.db_schema}.outbox"
        )
        dispatch = Dispatch(settings=settings, pool=pool, clock=clock)
        sender = Sender(dispatch, on_commit=relay.notify)

        def committed() -> None:
            relay.notify()
            sender.wake()

        consumer = IdempotentConsumer(
            settings,
            pool,
            name="dispatch",
            group_id=settings.consumer_group,
            topics=CONSUMED_TOPICS,
            handler=functools.partial(on_event, dispatch),
            batch_handler=functools.partial(on_batch, dispatch),
            on_commit=committed,
        )
        app.state.dispatch, app.state.relay, app.state.consumer, app.state.sender = dispatch, relay, consumer, sender

        async def topics() -> None:
            await ensure_topics(
                settings, [*CONSUMED_TOPICS, DISPATCH_OUTCOMES, *map(dead_letter, CONSUMED_TOPICS)],
                deadline_seconds=float("inf"),
            )  # fmt: skip

        tasks: list[asyncio.Task[None]] = []
        if settings.sender_enabled:
            tasks.append(asyncio.create_task(supervise("sender", sender.run)))
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(supervise("relay", after(topics, relay.run))))
        if settings.consumer_enabled:
            tasks.append(asyncio.create_task(supervise("consumer", after(topics, consumer.run))))
        log.info("dispatch.started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            await stop_all(tasks)
            await close_pool(pool)
            log.info("dispatch.stopped")

    app = FastAPI(
        title="Mina intyg – dispatch",
        version="1.0.0",
        summary="Sends certificates to recipients (Försäkringskassan first), exactly once, whatever fails.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, Any]:
        checks: dict[str, Any] = await outbox_readiness(app.state.dispatch.pool, app.state.relay)
        checks["consumer"] = {"ok": app.state.consumer.assigned, "required": False}
        checks["recipients"] = {
            "ok": True,
            "required": False,
            "circuits": {rid: w.breaker.state.value for rid, (w, _) in app.state.sender.workers.items()},
        }
        return checks

    install_common(app, readiness, max_body_bytes=16 * 1024)
    return app
