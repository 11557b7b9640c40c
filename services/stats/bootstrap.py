"""The one place that wires statistics: its pool and relay, the ingest consumers of released certificates, and the
feed publisher."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from schemas.topics import CONSENT_RELEASED, STATS_SICKLEAVE
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Pool
from services.kit.service import Host
from services.stats import repo
from services.stats.cache import ReportCache
from services.stats.feed import FeedPublisher
from services.stats.handlers import Ingest, on_batch, on_event
from services.stats.rebuild import CONSUMER_NAME
from services.stats.released import decode_released
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stats:
    """What the report routes and the dashboard need."""

    settings: StatsSettings
    pool: Pool
    clock: Callable[[], datetime]
    population: dict[str, int]
    cache: ReportCache


async def bootstrap(
    host: Host, *, settings: StatsSettings, clock: Callable[[], datetime], population: dict[str, int]
) -> Stats:
    """Wire the service; reports computed are cached until this process's ingest commits anything."""
    pool = await host.pool(max_size=20)
    cache = ReportCache(settings.report_cache_seconds)
    host.topics([CONSENT_RELEASED, STATS_SICKLEAVE])
    relay = host.relay(pool, enabled=settings.relay_enabled)
    publisher = FeedPublisher(pool, settings, population, clock, relay.notify)

    def committed() -> None:
        publisher.mark_changed()
        cache.changed()

    ingest = Ingest(pseudonym_key=settings.pseudonym_key.get_secret_value())

    async def consume(consumer: IdempotentConsumer) -> None:
        while await repo.rebuild_in_progress(pool):  # the operator's rebuild owns the tables until it is done
            log.warning("stats.ingest.waiting_for_rebuild")
            await asyncio.sleep(5)
        await consumer.run()

    # Several consumers of the one group: while one waits for PostgreSQL, another decodes and merges its batch
    # (the ingest's wall time was half Python, half SQL, one after the other). A person's events are all in
    # one partition, so consumers never touch the same facts or cases; the aggregates, which all batches
    # change, are locked in key order and only at the end of each transaction. One supervised task per consumer:
    # each restarts on its own, and on shutdown the host waits until every one has left the group (a rebuild
    # started right after a stop finds the group empty).
    consumers = [
        host.consumer(
            consumer,
            task=f"ingest-{i}",
            enabled=settings.consumer_enabled,
            run=functools.partial(consume, consumer),
        )
        for i, consumer in enumerate(
            IdempotentConsumer(
                settings,
                pool,
                name=CONSUMER_NAME,
                topics=[CONSENT_RELEASED],
                handler=functools.partial(on_event, ingest),
                batch_handler=functools.partial(on_batch, ingest),
                max_records=settings.max_records,
                on_commit=committed,
                one_transaction_per_fetch=True,
                decoder=decode_released,
            )
            for _ in range(settings.ingest_consumers)
        )
    ]

    async def ingest_assigned() -> dict[str, Any]:
        return {"ok": any(c.assigned for c in consumers), "required": False}

    host.check("ingest", ingest_assigned)
    if settings.publisher_enabled:
        host.task("feed", publisher.run)
    return Stats(settings=settings, pool=pool, clock=clock, population=population, cache=cache)
