"""The one place that wires consent: its pool and relay, the gate (a consumer of intake's certificates), and the
retention and gauge loops."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

import structlog
from prometheus_client import Gauge

from schemas.topics import CONSENT_EVENTS, CONSENT_RELEASED, INTAKE_CERTIFICATES
from services.consent import repo
from services.consent.handlers import Clock, Gate, on_intake_batch, on_intake_event
from services.consent.settings import ConsentSettings
from services.kit.consumer import IdempotentConsumer
from services.kit.service import Host

log = structlog.get_logger(__name__)

HELD_NOW = Gauge("consent_held_now", "Certificates held behind the gate now")


async def bootstrap(host: Host, *, settings: ConsentSettings, clock: Clock) -> Gate:
    """Consent's state: the gate, whose pool the routes use too."""
    pool = await host.pool(max_size=20)
    host.topics([INTAKE_CERTIFICATES, CONSENT_EVENTS, CONSENT_RELEASED])
    relay = host.relay(pool, enabled=settings.relay_enabled)
    gate = Gate(settings=settings, pool=pool, clock=clock, on_commit=relay.notify)

    async def purge() -> None:
        while True:
            now = clock()
            before = now - timedelta(days=settings.held_retention_days)
            purged = await repo.purge_expired_held(pool, before, now)
            if purged:
                log.info("consent.held.purged", count=purged, held_since_before=before.isoformat())
            await asyncio.sleep(settings.purge_interval_seconds)

    async def gauges() -> None:
        while True:
            HELD_NOW.set(await repo.held_count(pool))
            await asyncio.sleep(15)

    host.task("purge", purge)
    host.task("gauges", gauges)
    host.consumer(
        IdempotentConsumer(
            settings,
            pool,
            name="consent-gate",
            topics=[INTAKE_CERTIFICATES],
            handler=functools.partial(on_intake_event, gate),
            batch_handler=functools.partial(on_intake_batch, gate),
            max_records=2000,
            on_commit=relay.notify,
        ),
        task="gate",
        enabled=settings.consumer_enabled,
        check="gate",
    )
    return gate
