"""The service host (services/kit/service.py): start and stop order, supervised tasks, readiness, typed state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware import Middleware

from schemas.topics import TopicSpec
from services.kit.db import Pool
from services.kit.kafka import client_options
from services.kit.outbox import OutboxRelay
from services.kit.service import Host, add_routes, app_state, service_app, state_dependency
from services.kit.settings import ServiceSettings


class HostedSettings(ServiceSettings):
    db_schema: str
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class State:
    pool: Pool | None = None
    relay: OutboxRelay | None = None
    events: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)


async def until(condition: Any, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


@pytest.fixture
def settings(schema: str, unique: str) -> HostedSettings:
    return HostedSettings(db_schema=schema, topic_prefix=f"t{unique}.", environment="test", log_json=False)


router = APIRouter()


@router.get("/state")
async def read_state(state: Annotated[State, Depends(state_dependency(State))]) -> dict[str, Any]:
    return {"events": state.events}


async def test_start_and_stop_order(settings: HostedSettings, tmp_path: Path) -> None:
    state = State()
    events = state.events

    async def loop(name: str) -> None:
        events.append(f"{name}.started")
        try:
            await asyncio.Event().wait()
        finally:
            assert state.pool is not None
            assert not state.pool.is_closing(), "a pool closed under a running task"
            events.append(f"{name}.cancelled")

    async def bootstrap(host: Host) -> State:
        events.append("bootstrap")
        state.pool = await host.pool(max_size=2)
        # Migrated before the bootstrap ran: the kit's outbox table is there.
        assert await state.pool.fetchval("SELECT count(*) FROM outbox") == 0
        host.task("first", lambda: loop("first"))
        host.task("second", lambda: loop("second"))
        host.on_stop(lambda: events.append("cleanup.first-registered"))

        async def async_cleanup() -> None:
            assert state.pool is not None
            assert not state.pool.is_closing()
            events.append("cleanup.last-registered")

        host.on_stop(async_cleanup)
        assert events == ["bootstrap"], "work starts only after the bootstrap returned"
        return state

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024, migrations=tmp_path)
    app.include_router(router)
    async with LifespanManager(app) as manager:
        assert app_state(app, State) is state
        await until(lambda: {"first.started", "second.started"} <= set(events))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            answer = await client.get("/state")
            assert answer.status_code == 200
            assert answer.json()["events"][0] == "bootstrap"
    cancelled = [e for e in events if e.endswith(".cancelled")]
    assert sorted(cancelled) == ["first.cancelled", "second.cancelled"]
    # Tasks stop first, then the clean-ups (last registered first), then the pools.
    assert events[-2:] == ["cleanup.last-registered", "cleanup.first-registered"]
    assert state.pool is not None
    assert state.pool.is_closing()
    with pytest.raises(TypeError):
        app_state(app, HostedSettings)


async def test_a_failing_task_is_restarted(settings: HostedSettings, tmp_path: Path) -> None:
    state = State()

    async def flaky() -> None:
        state.runs["flaky"] = state.runs.get("flaky", 0) + 1
        if state.runs["flaky"] == 1:
            raise RuntimeError("first run fails")
        await asyncio.Event().wait()

    async def bootstrap(host: Host) -> State:
        host.task("flaky", flaky)
        return state

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024)
    async with LifespanManager(app):
        await until(lambda: state.runs.get("flaky", 0) >= 2)


async def test_readiness(settings: HostedSettings, tmp_path: Path) -> None:
    required_ok = {"value": True}

    async def bootstrap(host: Host) -> State:
        pool = await host.pool(max_size=2)
        relay = host.relay(pool, enabled=False)

        async def required() -> dict[str, Any]:
            return {"ok": required_ok["value"]}

        async def informative() -> dict[str, Any]:
            return {"ok": False, "required": False}

        host.check("required", required)
        host.check("informative", informative)
        return State(pool=pool, relay=relay)

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024, migrations=tmp_path)
    before = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with before:
        answer = await before.get("/readyz")
        assert answer.status_code == 503, "not ready before the lifespan started"
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        answer = await client.get("/readyz")
        body = answer.json()
        assert answer.status_code == 200, body
        assert list(body["checks"]) == ["database", "relay", "required", "informative"]
        assert body["checks"]["database"] == {"ok": True, "outbox_backlog": 0}
        assert body["checks"]["relay"]["required"] is False
        required_ok["value"] = False
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_relay_and_consumers_wait_for_the_declared_topics(settings: HostedSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    seen: list[str] = []
    spec = TopicSpec("hosted.things", "id")

    async def bootstrap(host: Host) -> State:
        host.topics([spec])

        async def work() -> None:
            seen.append("ran")
            await asyncio.Event().wait()

        host.task("needs-topics", work, needs_topics=True)
        return State()

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024)
    async with LifespanManager(app):
        await until(lambda: seen == ["ran"], deadline=60)
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            assert settings.topic(spec.name) in await admin.list_topics()
        finally:
            await admin.close()


async def test_a_failed_bootstrap_closes_what_it_opened(settings: HostedSettings, tmp_path: Path) -> None:
    opened: list[Pool] = []
    cleaned: list[str] = []

    async def bootstrap(host: Host) -> State:
        opened.append(await host.pool(max_size=1))
        host.on_stop(lambda: cleaned.append("cleanup"))
        raise RuntimeError("wiring failed")

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024)
    with pytest.raises(RuntimeError, match="wiring failed"):
        async with LifespanManager(app):
            pass  # pragma: no cover - the start fails
    assert cleaned == ["cleanup"]
    assert opened[0].is_closing()
    with pytest.raises(LookupError):
        app_state(app, State)


async def test_the_operational_routes_are_mounted(settings: HostedSettings) -> None:
    async def bootstrap(_host: Host) -> State:
        return State()

    app = service_app("hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024)
    assert isinstance(app, FastAPI)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.post("/healthz", content=b"x" * 2048)).status_code == 413


async def test_inner_middleware_runs_inside_the_common_ones_and_routes_are_added_flat(settings: HostedSettings) -> None:
    seen: list[tuple[str, bool]] = []

    class Inner:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":  # the request context middleware has run: its correlation id is there
                seen.append((scope["path"], "correlation_id" in scope.get("state", {})))
            await self.app(scope, receive, send)

    async def bootstrap(_host: Host) -> State:
        return State()

    app = service_app(
        "hosted", settings, bootstrap, title="t", summary="s", max_body_bytes=1024, inner_middleware=[Middleware(Inner)]
    )
    add_routes(app, router)
    assert "/state" in {getattr(r, "path", "") for r in app.routes}
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert (await client.get("/state")).status_code == 200
        assert (await client.post("/state", content=b"x" * 2048)).status_code == 413  # the body limit runs first
    assert seen == [("/state", True)]
