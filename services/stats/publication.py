"""What is published, and when: every report table is a stored publication, served as stored.

- A **closed** period (a calendar month, quarter or year that ended more than `close_after_days` ago) is published
  once: its table is computed the first time anyone (the feed, the API, the dashboard) asks for it, stored, and
  never changed again, whatever arrives later (a late certificate, a revocation, a withdrawal). So nothing about a
  closed period changes between two looks at it.
- The **current** month, quarter and year are **preliminary**, national only, and replaced only by a release: on a
  fixed cadence (`publish_interval_seconds`, daily at 00:00 UTC by default) and only when at least
  `preliminary_min_changes` cases changed since the last release, so one arriving certificate never shows as a step.
- A **county** table is offered for closed periods only, and only where the county has at least `county_min_cases`
  cases in the period by the (protected, published) national county table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from schemas.certificate import COUNTY_NAMES, County
from services.kit.db import Pool
from services.stats import repo
from services.stats.reports import (
    REPORTS,
    InvalidPeriod,
    Period,
    ReportSpec,
    ReportView,
    compute,
    current_periods,
    parse_period,
)

NATIONAL = "riket"


class NotReady(RuntimeError):
    """Nothing can be published now (a rebuild is in progress)."""


@dataclass(frozen=True)
class Policy:
    close_after_days: int
    preliminary_min_changes: int
    county_min_cases: int


class Cache:
    """Published tables in this process: a final one for good (it never changes), a preliminary one for a few
    seconds (a release replaces it at most once a day, maybe in another replica)."""

    def __init__(self, preliminary_seconds: float = 5.0, size: int = 2000) -> None:
        self._preliminary_seconds = preliminary_seconds
        self._size = size
        self._entries: dict[str, tuple[float | None, str]] = {}

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, body = entry
        if expires is not None and time.monotonic() > expires:
            del self._entries[key]
            return None
        return body

    def put(self, key: str, body: str, preliminary: bool) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._preliminary_seconds if preliminary else None, body)


def publication_key(report: str, period: Period, county: str | None) -> str:
    return f"{report}:{period.key}:{county or NATIONAL}"


async def published(
    pool: Pool,
    spec: ReportSpec,
    period: Period,
    county: str | None,
    now: datetime,
    population: dict[str, int],
    policy: Policy,
    cache: Cache | None = None,
) -> str:
    """The report's published table as JSON (stored; computed and stored the first time it is asked for)."""
    today = now.date()
    closed = period.closed(today, policy.close_after_days)
    if not closed and period.start > today:
        raise InvalidPeriod("period", "lies in the future")
    if county is not None:
        if not closed:
            raise InvalidPeriod("county", "county tables are published for closed periods only")
        national = ReportView.model_validate_json(
            await published(pool, REPORTS["county"], period, None, now, population, policy, cache)
        )
        row = next(r for r in national.rows if r[0] == COUNTY_NAMES[County(county)])
        total = row[3]
        if not isinstance(total, int) or total < policy.county_min_cases:
            raise InvalidPeriod(
                "county", f"the county has too few cases in {period.key} to be published alone (the county report "
                f"shows every county)"
            )  # fmt: skip
    key = publication_key(spec.name, period, county)
    if cache is not None and (body := cache.get(key)) is not None:
        return body
    stored = await repo.publication(pool, key)
    if stored is None or not (closed or stored.preliminary):  # none yet, or a preliminary one whose period closed
        if await repo.rebuild_in_progress(pool):  # a closed period is published once: not from half-rebuilt counts
            raise NotReady("statistics are being rebuilt; try again later")
        view = await compute(pool, spec, period, county, now, population, preliminary=not closed)
        await repo.save_publication(pool, key, view.model_dump_json(), not closed, now)
        stored = await repo.publication(pool, key)  # another replica may have stored it first: theirs stands
        assert stored is not None
    if cache is not None:
        cache.put(key, stored.body, stored.preliminary)
    return stored.body


async def release(pool: Pool, now: datetime, population: dict[str, int], policy: Policy) -> list[ReportView]:
    """A release: the preliminary tables replaced (when enough changed) and those whose period closed made final.

    Returns every table this release published (for the feed)."""
    today = now.date()
    out: list[ReportView] = []
    async with pool.acquire() as conn, conn.transaction():
        changes = await repo.take_changes(conn)
        stored = await repo.preliminary_keys(conn)
        current = [p for p in current_periods(today) if not p.closed(today, policy.close_after_days)]
        fresh = {publication_key(s.name, p, None) for s in REPORTS.values() for p in current}
        if changes >= policy.preliminary_min_changes or not fresh <= set(stored):
            for period in current:
                for spec in REPORTS.values():
                    view = await compute(conn, spec, period, None, now, population, preliminary=True)
                    await repo.save_publication(conn, publication_key(spec.name, period, None),
                                                view.model_dump_json(), True, now)  # fmt: skip
                    out.append(view)
            await repo.reset_changes(conn, now)
        for key in stored:
            name, period_text, _ = key.split(":")
            period = parse_period(period_text)
            if period.closed(today, policy.close_after_days):
                view = await compute(conn, REPORTS[name], period, None, now, population, preliminary=False)
                await repo.save_publication(conn, key, view.model_dump_json(), False, now)
                out.append(view)
    return out
