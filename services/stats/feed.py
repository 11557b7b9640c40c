"""The analysts' feed: every report's current snapshot on stats.sickleave.v1 (compacted, keyed by report and
period), published through the outbox when it changed, at most once per configured interval per report key."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime

import orjson
import structlog
from prometheus_client import Counter

from schemas.envelope import new_envelope
from schemas.events import StatsReportPublished
from schemas.topics import STATS_SICKLEAVE
from services.kit.db import Pool
from services.kit.outbox import add_to_outbox
from services.stats import repo
from services.stats.reports import REPORTS, ReportView, compute, default_period
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)

SOURCE = "minaintyg/stats"
FEED_PUBLISHED = Counter("stats_feed_published_total", "Report snapshots written to the feed", ["report"])


def digest(report: ReportView) -> str:
    """What identifies a snapshot's content (the computing time aside)."""
    content = [report.period_start.isoformat(), report.period_end.isoformat(), report.columns, report.rows,
               report.suppressed]  # fmt: skip
    return hashlib.sha256(orjson.dumps(content)).hexdigest()


async def publish_changed(
    pool: Pool, settings: StatsSettings, now: datetime, population: dict[str, int]
) -> tuple[int, int]:
    """Write every changed report of the current period to the outbox; returns (published, deferred)."""
    period = default_period(now.date())
    published = deferred = 0
    for spec in REPORTS.values():
        report = await compute(pool, spec, period, None, now, population)
        key = f"{spec.name}:{period.key}"
        content = digest(report)
        async with pool.acquire() as conn, conn.transaction():
            state = await repo.feed_state(conn, key)
            if state is not None and state[0] == content:
                continue
            if state is not None and (now - state[1]).total_seconds() < settings.publish_interval_seconds:
                deferred += 1
                continue
            event = StatsReportPublished(
                report=spec.name, period_start=report.period_start, period_end=report.period_end,
                computed_at=report.computed_at, columns=report.columns, rows=report.rows,
                suppressed=report.suppressed,
            )  # fmt: skip
            envelope = new_envelope(event, source=SOURCE, time=now, correlation_id=str(uuid.uuid4()), subject=key)
            await add_to_outbox(conn, settings.topic(STATS_SICKLEAVE.name), key, envelope)
            await repo.save_feed_state(conn, key, content, now)
        FEED_PUBLISHED.labels(spec.name).inc()
        published += 1
    return published, deferred


class FeedPublisher:
    """Publishes changed reports every `publish_interval_seconds` when the ingest has changed something."""

    def __init__(
        self,
        pool: Pool,
        settings: StatsSettings,
        population: dict[str, int],
        clock: Callable[[], datetime],
        notify_relay: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._population = population
        self._clock = clock
        self._notify_relay = notify_relay
        self._dirty = True  # the period may have moved on since the last run: look once at start-up

    def mark_changed(self) -> None:
        """Called after the ingest committed a batch."""
        self._dirty = True

    async def run(self) -> None:
        """Publish until cancelled."""
        while True:
            if self._dirty:
                self._dirty = False
                published, deferred = await publish_changed(self._pool, self._settings, self._clock(),
                                                            self._population)  # fmt: skip
                if deferred:
                    self._dirty = True
                if published:
                    self._notify_relay()
                    log.info("stats.feed.published", reports=published, deferred=deferred)
            await asyncio.sleep(self._settings.publish_interval_seconds)
