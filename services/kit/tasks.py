"""Background work of a service: restarted with backoff when it fails, stopped cleanly on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def supervise(
    name: str,
    work: Callable[[], Awaitable[None]],
    *,
    first_backoff: float = 0.5,
    max_backoff: float = 10.0,
    healthy_after: float = 30.0,
) -> None:
    """Run `work` until cancelled; if it fails or returns, log and start it again after a pause that grows while it
    keeps failing. A run that lasted `healthy_after` seconds counts as healthy: the pause after it starts again at
    `first_backoff` (the failures of a long-lived service are then each a new one, and the pause after an hour of work
    must not be the one earned by the start-up's failures)."""
    backoff = first_backoff
    while True:
        started = time.monotonic()
        try:
            await work()
            outcome = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = exc
        if time.monotonic() - started >= healthy_after:
            backoff = first_backoff
        if outcome is None:
            log.warning("task.returned", task=name, retry_in=backoff)
        else:
            log.error("task.failed", task=name, error=f"{type(outcome).__name__}: {outcome}", retry_in=backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff)


def after(prepare: Callable[[], Awaitable[None]], work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """`work`, each time only once `prepare` has run: e.g. a consumer or relay that needs its topics, which Kafka may
    not have yet when the service starts (`supervise` runs both again after a failure)."""

    async def run() -> None:
        await prepare()
        await work()

    return run


async def stop_all(tasks: list[asyncio.Task[None]], grace: float = 10.0) -> None:
    """Cancel the tasks and wait for them, at most `grace` seconds."""
    for task in tasks:
        task.cancel()
    if tasks:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), grace)
