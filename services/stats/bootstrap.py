"""The one place that wires statistics: its pool and relay, the ingest consumers of released certificates, the
feed publisher, the analysts' access (credentials, rate limit) and the audit rows written after each answer."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from schemas.topics import CONSENT_RELEASED, STATS_SICKLEAVE
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Pool
from services.kit.service import Host
from services.stats import repo
from services.stats.access import Access
from services.stats.feed import FeedPublisher
from services.stats.handlers import Ingest, on_batch, on_event
from services.stats.publication import Cache
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
    access: Access
    published: Cache
    audits: set[asyncio.Task[None]] = field(default_factory=set)

    def audit_later(self, work: Coroutine[Any, Any, None]) -> None:
        """Write an audit row after the answer; the host awaits every pending one before the pool closes."""
        task = asyncio.create_task(work)
        self.audits.add(task)
        task.add_done_callback(self.audits.discard)

    async def audits_written(self) -> None:
        await asyncio.gather(*self.audits, return_exceptions=True)


async def bootstrap(
    host: Host, *, settings: StatsSettings, clock: Callable[[], datetime], population: dict[str, int]
) -> Stats:
    """Wire the service; published tables are cached in the process (publication.py: finals for good, preliminary
    ones for seconds)."""
    pool = await host.pool(max_size=20)
    host.topics([CONSENT_RELEASED, STATS_SICKLEAVE])
    relay = host.relay(pool, enabled=settings.relay_enabled)
    publisher = FeedPublisher(pool, settings, population, clock, relay.notify)
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
    stats = Stats(
        settings=settings,
        pool=pool,
        clock=clock,
        population=population,
        access=Access(settings),
        published=Cache(preliminary_seconds=min(5.0, settings.publish_interval_seconds / 2)),
    )
    host.on_stop(stats.audits_written)  # after the routes' last answers, before the pool closes
    return stats
