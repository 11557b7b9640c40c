"""The one place that wires intake: its pool, its outbox relay, the topic it publishes to and the retention loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from schemas.topics import INTAKE_CERTIFICATES
from services.intake import repo
from services.intake.handlers import Clock, Intake
from services.intake.settings import IntakeSettings
from services.kit.ratelimit import RateLimit
from services.kit.service import Host

log = structlog.get_logger(__name__)


async def bootstrap(host: Host, *, settings: IntakeSettings, clock: Clock) -> Intake:
    """Intake's state: certificates are accepted while Kafka is away (the outbox holds them)."""
    # Requests use a pool without asyncpg's reset query on release (they leave no session state behind): one round
    # trip per certificate instead of two (and one database span, telemetry on). The relay (a session advisory lock)
    # and the purge keep a resetting pool of their own, as in the portal.
    pool = await host.pool(max_size=20, reset_session=False)
    background = await host.pool(application="intake-bg", max_size=3)
    host.topics([INTAKE_CERTIFICATES])
    relay = host.relay(background, enabled=settings.relay_enabled)

    async def purge() -> None:
        while True:
            before = clock() - timedelta(days=settings.document_retention_days)
            purged = await repo.purge_documents(background, before)
            if purged:
                log.info("intake.documents.purged", count=purged, received_before=before.isoformat())
            await asyncio.sleep(settings.purge_interval_seconds)

    host.task("purge", purge)
    deliveries = RateLimit(settings.rate_limit, "deliveries from this platform")
    return Intake(settings=settings, pool=pool, clock=clock, on_commit=relay.notify, deliveries=deliveries)
