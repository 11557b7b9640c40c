"""Failure injection: the ways a real recipient fails, switched on through /sim/faults for tests and demos.

Faults act on `/v1/` and on the RIV-TA endpoints (`/riv/`) only. Planned downtime refuses every such request; the
random faults (error, timeout, dropped response) and the added latency act on writes (POST) only, so "did you
receive X?" keeps working while a sender is being made to fail. On a RIV-TA endpoint an injected error is the answer
ERROR/TECHNICAL_ERROR (HTTP 200, as the real receiver answers a failure of its own); downtime and timeouts are SOAP
Faults with the same statuses. The configuration lives in the process: a restarted simulator starts without faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.base import Frozen
from schemas.riv import soap

Clock = Callable[[], datetime]


class FaultKind(enum.StrEnum):
    ERROR = "error"
    LATENCY = "latency"
    TIMEOUT = "timeout"
    DOWNTIME = "downtime"
    DROP_RESPONSE = "drop_response"


class FaultConfig(Frozen):
    """Which faults to inject; a PUT replaces the whole configuration (omitted fields mean no such fault)."""

    error_rate: float = Field(0.0, ge=0, le=1, description="Share of writes answered 503 before anything is stored")
    latency_ms: int = Field(0, ge=0, le=120_000, description="Delay added before every write is answered")
    timeout_rate: float = Field(
        0.0, ge=0, le=1, description="Share of writes held for timeout_hold_s, then 504; nothing is stored"
    )
    timeout_hold_s: float = Field(30.0, gt=0, le=600, description="How long a simulated timeout holds a request")
    down_until: AwareDatetime | None = Field(
        None, description="Planned downtime: every /v1 request is answered 503 with Retry-After until then"
    )
    drop_response_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of successful writes that are stored and committed, after which the connection is cut "
        "before a complete answer: the sender cannot know the certificate arrived",
    )
    seed: int | None = Field(None, description="Seed of the random draws, for a reproducible sequence of faults")


class ResponseDropped(Exception):
    """Raised after the response head was sent, so the server cuts the connection mid-response."""


@dataclass(frozen=True)
class _Plan:
    error: bool
    timeout: bool
    drop: bool


OnFault = Callable[[FaultKind, Scope], Awaitable[None]]


class FaultInjector:
    """The current fault configuration and its random source."""

    def __init__(self, clock: Clock, on_fault: OnFault) -> None:
        self._clock = clock
        self._on_fault = on_fault
        self.config = FaultConfig()
        self._rng = random.Random()

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; a seed restarts the random sequence."""
        self.config = config
        self._rng = random.Random(config.seed)

    def downtime_left(self) -> float | None:
        """Seconds of planned downtime left, or None when the service is up."""
        until = self.config.down_until
        if until is None:
            return None
        left = (until - self._clock()).total_seconds()
        return left if left > 0 else None

    def plan(self) -> _Plan:
        """The random faults of one write. Three draws every time, so a seed gives the same sequence."""
        config = self.config
        error, timeout, drop = (self._rng.random() for _ in range(3))
        return _Plan(
            error=error < config.error_rate,
            timeout=timeout < config.timeout_rate,
            drop=drop < config.drop_response_rate,
        )

    async def injected(self, kind: FaultKind, scope: Scope) -> None:
        await self._on_fault(kind, scope)


RivError = Callable[[str], bytes | None]  # a RIV-TA path → the answer ERROR/TECHNICAL_ERROR (None: not such a path)


class FaultMiddleware:
    """Applies the injector's faults to `/v1/` and `/riv/` requests (after authentication, before the routes)."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, riv_error: RivError | None = None) -> None:
        self.app = app
        self.injector = injector
        self.riv_error = riv_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/v1/", "/riv/")):
            await self.app(scope, receive, send)
            return
        riv = scope["path"].startswith("/riv/")
        injector = self.injector
        left = injector.downtime_left()
        if left is not None:
            await injector.injected(FaultKind.DOWNTIME, scope)
            await _send_error(
                send, riv, 503, "Försäkringskassan is down for planned maintenance", retry_after=max(1, math.ceil(left))
            )
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        config = injector.config
        plan = injector.plan()
        if config.latency_ms > 0:
            await injector.injected(FaultKind.LATENCY, scope)
            send = _delayed(send, config.latency_ms / 1000)
        if plan.error:
            await injector.injected(FaultKind.ERROR, scope)
            answer = self.riv_error(scope["path"]) if riv and self.riv_error is not None else None
            if answer is not None:
                await _send_bytes(send, 200, answer, SOAP_XML)
                return
            await _send_error(send, riv, 503, "simulated error: Försäkringskassan could not take the request")
            return
        if plan.timeout:
            await injector.injected(FaultKind.TIMEOUT, scope)
            await _hold(receive, config.timeout_hold_s)
            # Usually nobody is listening any more; a sender that waited this long learns that nothing happened.
            await _send_error(send, riv, 504, "simulated timeout: nothing was stored")
            return
        if plan.drop:
            await self._drop_response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _drop_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the route store and commit, then send only the response head and cut the connection."""
        messages: list[Message] = []

        async def withhold(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, withhold)
        start = messages[0] if messages else None
        if start is None or start["status"] >= 300:
            # Nothing was accepted (a 4xx, say): only "accepted but the answer was lost" is the fault asked for.
            for message in messages:
                await send(message)
            return
        await self.injector.injected(FaultKind.DROP_RESPONSE, scope)
        await send(start)
        # The head promised a body that never comes; raising makes uvicorn close the transport mid-response.
        raise ResponseDropped(f"response to {scope['method']} {scope['path']} dropped on purpose")


def _delayed(send: Send, seconds: float) -> Send:
    async def delayed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return delayed_send


async def _hold(receive: Receive, seconds: float) -> None:
    """Wait `seconds`, or less if the client gives up first (so no task outlives its connection for long)."""

    async def client_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client_gone(), seconds)


SOAP_XML = b"text/xml; charset=utf-8"


async def _send_error(send: Send, riv: bool, status: int, text: str, *, retry_after: int | None = None) -> None:
    """An injected failure: a SOAP Fault on a RIV-TA endpoint, else the JSON API's error body."""
    if riv:
        await _send_bytes(send, status, soap.fault("Server", text), SOAP_XML, retry_after=retry_after)
    else:
        await _send_json(send, status, {"detail": text}, retry_after=retry_after)


async def _send_json(send: Send, status: int, body: dict[str, Any], *, retry_after: int | None = None) -> None:
    await _send_bytes(send, status, orjson.dumps(body), b"application/json", retry_after=retry_after)


async def _send_bytes(
    send: Send, status: int, payload: bytes, content_type: bytes, *, retry_after: int | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class _HideDroppedResponses(logging.Filter):
    """uvicorn logs every exception of the app with a traceback; a dropped response is intended, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ResponseDropped))


_HIDE_DROPPED = _HideDroppedResponses()


def hide_dropped_response_errors() -> None:
    """Keep intended connection cuts out of uvicorn's error log (idempotent)."""
    logging.getLogger("uvicorn.error").addFilter(_HIDE_DROPPED)
