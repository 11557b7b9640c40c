"""Polling with a deadline (tests never sleep a fixed time), and the one readiness poller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


class NotReady(AssertionError):
    """A service did not answer 200 on /readyz before the deadline, or its process ended first."""


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll `check` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def is_ready(url: str, client: httpx.AsyncClient | None = None) -> bool:
    """One look at `url`/readyz: True on 200, False on another status or no answer."""
    try:
        if client is not None:
            return (await client.get(f"{url}/readyz")).status_code == 200
        async with httpx.AsyncClient(timeout=1) as own:
            return (await own.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_ready(
    url: str,
    *,
    within: float = 60.0,
    interval: float = 0.2,
    alive: Callable[[], str | None] | None = None,
    what: str | None = None,
) -> None:
    """Poll `url`/readyz until it answers 200; `NotReady` after `within` seconds, or at once when `alive` (a process
    check returning why it is not alive, or None) says the service is gone."""
    name = what or url
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if await is_ready(url, client):
                return
            if alive is not None and (gone := alive()) is not None:
                raise NotReady(f"{name} is not ready: {gone}")
            if time.monotonic() > deadline:
                raise NotReady(f"{name} did not become ready within {within:.0f} s")
            await asyncio.sleep(interval)
