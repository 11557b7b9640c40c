"""A service's app in this process: `create_app(settings)` under its lifespan (startup and ordered shutdown), and an
httpx client on it through ASGI (no socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


@asynccontextmanager
async def running(
    app: ASGIApp, *, startup_timeout: float = STARTUP_TIMEOUT, shutdown_timeout: float = SHUTDOWN_TIMEOUT
) -> AsyncIterator[ASGIApp]:
    """`app` started (its lifespan ran to ready) until the block ends, then shut down; yields the app to mount."""
    async with LifespanManager(app, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout) as manager:
        yield manager.app


@asynccontextmanager
async def in_process(
    app: ASGIApp,
    base_url: str = "http://service",
    *,
    startup_timeout: float = STARTUP_TIMEOUT,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    **client: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """`app` running, and an httpx client on it (`client` are further `httpx.AsyncClient` arguments)."""
    async with (
        running(app, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout) as started,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=started), base_url=base_url, **client) as http,
    ):
        yield http
