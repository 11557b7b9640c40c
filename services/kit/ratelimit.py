"""Abuse limits: a rate per client (limits' moving window, in the memory of one process) and a bound on a client's
work in flight, answered with 429 and `Retry-After` by every service (`install_common` registers the answer).

Where abuse is cheap and costs everyone: starting a login (each start is a database row), PDFs and register extracts
per citizen (CPU on one worker thread shared by all), deliveries per platform at intake, queries per analyst at
statistics. The limits are settings in limits' notation ("30/minute", "500/second"). In memory per process: with
N replicas a client gets at most N times the rate, which bounds abuse without a shared store on the hot path.

The moving window is kept here rather than in limits' MemoryStorage: that one starts a timer thread every 10 ms
while hits come in (to expire old entries) and inserts each hit at the front of a list, which cost intake about
50 µs of CPU per delivery at 1,000/s; here a hit is a few deque operations and nothing runs in between.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import Request
from fastapi.responses import JSONResponse
from limits import parse

from services.kit.problems import error_response


class TooManyRequests(Exception):
    """A client went over a limit; `retry_after` seconds until it may try again, `what` names the limit."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what}; retry after {retry_after} s")
        self.what = what
        self.retry_after = retry_after


class RateLimit:
    """`spec` per client (a moving window): `hit(client)` counts one and raises TooManyRequests when over, that
    is when `amount` hits were counted within the last `window` seconds (a refused hit is not counted)."""

    def __init__(self, spec: str, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.what = what
        item = parse(spec)
        self.amount: int = item.amount
        self.window: float = float(item.get_expiry())
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}  # per client, its counted hits within the window, oldest first
        self._swept = clock()

    def hit(self, client: str) -> None:
        now = self._clock()
        start = now - self.window
        if now - self._swept > self.window:
            self._sweep(start)
        hits = self._hits.get(client)
        if hits is None:
            hits = self._hits[client] = deque()
        while hits and hits[0] < start:
            hits.popleft()
        if len(hits) >= self.amount:
            raise TooManyRequests(self.what, max(1, math.ceil(hits[0] + self.window - now)))
        hits.append(now)

    def _sweep(self, start: float) -> None:
        """Forget the clients without a hit in the window (at most once a window: memory stays bounded by the
        clients seen lately)."""
        self._swept = start + self.window
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] < start]:
            del self._hits[client]


class InFlight:
    """At most `limit` pieces of work of one client at a time (e.g. PDFs queued for the one PDF thread), so one
    client cannot queue work ahead of everyone else."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self._running: Counter[str] = Counter()

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        if self._running[client] >= self.limit:
            raise TooManyRequests(self.what, 1)
        self._running[client] += 1
        try:
            yield
        finally:
            self._running[client] -= 1
            if not self._running[client]:
                del self._running[client]


async def too_many_requests(_request: Request, exc: Exception) -> JSONResponse:
    """429 with `Retry-After` and the problem body naming the limit."""
    assert isinstance(exc, TooManyRequests)
    response = error_response(429, str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response
