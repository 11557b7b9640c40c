"""The analysts' feed: every release's tables on stats.sickleave.v1 (compacted, keyed by report and period).

A release runs on a fixed cadence (publication.release): the preliminary national tables of the current month,
quarter and year when enough changed, and the final table of each period that closed. Each table that differs from
the last snapshot of its key goes into the outbox in one transaction with the feed state; the relay publishes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
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
from services.stats.publication import Policy, release
from services.stats.reports import ReportView
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)

SOURCE = "minaintyg/stats"
FEED_PUBLISHED = Counter("stats_feed_published_total", "Report snapshots written to the feed", ["report"])


def digest(report: ReportView) -> str:
    """What identifies a snapshot's content (the computing time aside)."""
    content = [report.period_start.isoformat(), report.period_end.isoformat(), report.preliminary, report.columns,
               report.rows, report.suppressed]  # fmt: skip
    return hashlib.sha256(orjson.dumps(content)).hexdigest()


async def publish(pool: Pool, settings: StatsSettings, views: list[ReportView], now: datetime) -> int:
    """Write each released table that changed to the outbox; returns how many."""
    published = 0
    for report in views:
        key = f"{report.report}:{report.period}"
        content = digest(report)
        async with pool.acquire() as conn, conn.transaction():
            state = await repo.feed_state(conn, key)
            if state is not None and state[0] == content:
                continue
            event = StatsReportPublished(
                report=report.report, period_start=report.period_start, period_end=report.period_end,
                computed_at=report.computed_at, columns=report.columns, rows=report.rows,
                suppressed=report.suppressed, preliminary=report.preliminary,
            )  # fmt: skip
            envelope = new_envelope(event, source=SOURCE, time=now, correlation_id=str(uuid.uuid4()), subject=key)
            await add_to_outbox(conn, settings.topic(STATS_SICKLEAVE.name), key, envelope)
            await repo.save_feed_state(conn, key, content, now)
        FEED_PUBLISHED.labels(report.report).inc()
        published += 1
    return published


def seconds_to_next_release(interval: float, wall: float) -> float:
    """Releases fall on whole multiples of the interval since the epoch (daily: 00:00 UTC)."""
    return interval - (wall % interval)


class FeedPublisher:
    """Runs a release at start-up and then on every tick of the cadence, and puts what it released on the feed."""

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

    async def release_once(self) -> int:
        now = self._clock()
        views = await release(self._pool, now, self._population, policy_of(self._settings))
        published = await publish(self._pool, self._settings, views, now)
        if published:
            self._notify_relay()
            log.info("stats.feed.published", reports=published)
        return published

    async def run(self) -> None:
        """Release until cancelled."""
        while True:
            await self.release_once()
            await asyncio.sleep(seconds_to_next_release(self._settings.publish_interval_seconds, time.time()))


def policy_of(settings: StatsSettings) -> Policy:
    return Policy(settings.close_after_days, settings.preliminary_min_changes, settings.county_min_cases)
