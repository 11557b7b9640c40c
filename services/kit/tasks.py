"""Background work of a service: restarted with backoff when it fails, stopped cleanly on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def supervise(name: str, work: Callable[[], Awaitable[None]], *, max_backoff: float = 10.0) -> None:
    """Run `work` until cancelled; if it fails or returns, log and start it again after a growing pause."""
    backoff = 0.5
    while True:
        try:
            await work()
            log.warning("task.returned", task=name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("task.failed", task=name, error=f"{type(exc).__name__}: {exc}", retry_in=backoff)
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
