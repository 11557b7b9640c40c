"""Background work of a service: restarted with backoff when it fails, stopped cleanly on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Backoff:
    """The pause before running failed work again: it doubles while the work keeps failing, up to `maximum`, and
    starts at `first` again after a run that lasted `healthy_after` seconds (the failures of a long-lived task are
    then each a new one: the pause after an hour of work must not be the one its start-up's failures earned)."""

    def __init__(self, first: float, maximum: float, healthy_after: float = 30.0) -> None:
        self.first, self.maximum, self.healthy_after = first, maximum, healthy_after
        self._next = first

    def after(self, lasted: float) -> float:
        """The pause after a failed run that lasted `lasted` seconds."""
        if lasted >= self.healthy_after:
            self._next = self.first
        pause = self._next
        self._next = min(self._next * 2, self.maximum)
        return pause


async def supervise(
    name: str,
    work: Callable[[], Awaitable[None]],
    *,
    first_backoff: float = 0.5,
    max_backoff: float = 10.0,
    healthy_after: float = 30.0,
) -> None:
    """Run `work` until cancelled; if it fails or returns, log and start it again after a pause (`Backoff`)."""
    backoff = Backoff(first_backoff, max_backoff, healthy_after)
    while True:
        started = time.monotonic()
        try:
            await work()
            outcome = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = exc
        pause = backoff.after(time.monotonic() - started)
        if outcome is None:
            log.warning("task.returned", task=name, retry_in=pause)
        else:
            log.error("task.failed", task=name, error=f"{type(outcome).__name__}: {outcome}", retry_in=pause)
        await asyncio.sleep(pause)


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
