"""Abuse limits: a rate per client (limits' moving window, in the memory of one process) and a bound on a client's
work in flight, answered with 429 and `Retry-After` by every service (`install_common` registers the answer).

Where abuse is cheap and costs everyone: starting a login (each start is a database row), PDFs and register extracts
per citizen (CPU on one worker thread shared by all), deliveries per platform at intake, queries per analyst at
statistics. The limits are settings in limits' notation ("30/minute", "500/second"). In memory per process: with
N replicas a client gets at most N times the rate, which bounds abuse without a shared store on the hot path.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from fastapi.responses import JSONResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.kit.problems import error_response


class TooManyRequests(Exception):
    """A client went over a limit; `retry_after` seconds until it may try again, `what` names the limit."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what}; retry after {retry_after} s")
        self.what = what
        self.retry_after = retry_after


class RateLimit:
    """`spec` per client (a moving window): `hit(client)` counts one and raises TooManyRequests when over."""

    def __init__(self, spec: str, what: str) -> None:
        self.spec = spec
        self.what = what
        self._item = parse(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        if not self._limiter.hit(self._item, client):
            reset = self._limiter.get_window_stats(self._item, client).reset_time
            raise TooManyRequests(self.what, max(1, math.ceil(reset - time.time())))


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
