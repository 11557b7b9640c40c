"""The service host: the one lifespan every service and simulator runs, and the typed state its routes depend on.

A service is three small pieces:

- a `bootstrap(host) -> State` coroutine (in the service's `bootstrap.py`, the one place that wires it): it opens
  pools with `host.pool(...)`, declares the Kafka topics it needs with `host.topics(...)`, creates its relay with
  `host.relay(pool)`, registers consumers with `host.consumer(...)` and loops with `host.task(...)`, adds
  informative readiness checks with `host.check(...)`, clean-ups with `host.on_stop(...)` and fields of the
  started log line with `host.describe(...)`, and returns the service's state (a dataclass of what its routes
  need);
- module-level `APIRouter`s whose routes take that state as a FastAPI dependency,
  `Annotated[State, Depends(state_dependency(State))]`;
- a `create_app(settings, ...)` that calls `service_app(...)` and includes the routers.

    def create_app(settings: ConsentSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
        settings = settings or ConsentSettings()
        app = service_app(
            "consent", settings, functools.partial(bootstrap, settings=settings, clock=clock),
            migrations=MIGRATIONS, title="Mina intyg – consent", max_body_bytes=16 * 1024,
        )
        app.include_router(router)
        return app

What the host does, in this order (`service_app`'s lifespan):

start   1. `configure_logging(name, settings.log_level, settings.log_json)`, then `configure_telemetry(name, settings)`
           (OpenTelemetry: off unless an exporter is configured)
        2. migrate the service's schema (`migrations`, if given)
        3. `bootstrap(host)`; its state becomes the app's (`app_state(app, State)`, `state_dependency(State)`)
        4. start the registered work, in registration order, each as a task restarted with backoff when it fails
           (`services.kit.tasks.supervise`); the relay and consumers only once the declared topics exist
           (`services.kit.tasks.after` + `ensure_topics`, waiting for Kafka as long as it takes)
        5. log `<log_name>.started`
stop    6. cancel every task and wait for all of them (at most `grace` seconds: `services.kit.tasks.stop_all`),
           so no loop or consumer still uses a pool or client when it closes
        7. the `on_stop` clean-ups, last registered first
        8. close the pools, last opened first
        9. log `<log_name>.stopped`
A bootstrap that fails half-way still gets steps 7 and 8 for what it had opened.

Readiness (`/readyz`, from `services.kit.http.install_common`): the relay's checks (`outbox_readiness`: the
database is required, the relay informative) if the service has a relay, then each `host.check`, in order. Before
the lifespan has started (or after a failed start) the service is not ready.

The state is kept in one slot of the app owned by this module (`app.state.service`); services read it only
through `app_state`/`state_dependency`, which check its type.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import structlog
from fastapi import APIRouter, FastAPI, Request
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from schemas.topics import TopicSpec
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Pool, close_pool, create_pool, migrate
from services.kit.http import install_common, traced
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.settings import ServiceSettings
from services.kit.tasks import after, stop_all, supervise
from services.kit.telemetry import configure_telemetry, flush_telemetry
from services.kit.tracing import recording

log = structlog.get_logger(__name__)

StateT = TypeVar("StateT")
Work = Callable[[], Awaitable[None]]
Check = Callable[[], Awaitable[dict[str, Any]]]
Cleanup = Callable[[], Awaitable[None] | None]
_SLOT = "service"


class Host:
    """What a bootstrap wires a service with: what it opens is closed, and what it registers is run, supervised and
    stopped, by the host."""

    def __init__(self, name: str, settings: ServiceSettings) -> None:
        self.name = name
        self.settings = settings
        self._pools: list[Pool] = []
        self._topics: dict[str, TopicSpec] = {}
        self._work: list[tuple[str, Work, bool]] = []  # name, work, needs the topics
        self._checks: list[tuple[str, Check]] = []
        self._cleanups: list[Cleanup] = []
        self._relay: tuple[Pool, OutboxRelay] | None = None
        self.described: dict[str, Any] = {
            "host": getattr(settings, "host", None),
            "port": getattr(settings, "port", None),
        }
        self.tasks: list[asyncio.Task[None]] = []

    async def pool(self, *, application: str | None = None, max_size: int = 20, **options: Any) -> Pool:
        """A pool on the service's schema (`settings.db_schema`), closed after every task has stopped."""
        schema: str = getattr(self.settings, "db_schema")  # noqa: B009 - every service with a database has one
        pool = await create_pool(
            self.settings.database_url, schema, application=application or self.name, max_size=max_size, **options
        )
        self._pools.append(pool)
        return pool

    def topics(self, specs: Iterable[TopicSpec]) -> None:
        """Topics the service needs: created before the relay and the consumers start (and again on a restart)."""
        for spec in specs:
            self._topics[spec.name] = spec

    def relay(self, pool: Pool, *, enabled: bool = True, client_id: str | None = None) -> OutboxRelay:
        """The service's outbox relay (one per service), run once the topics exist; its state joins readiness."""
        if self._relay is not None:
            raise RuntimeError("a service has one outbox relay")
        settings = self.settings
        schema: str = getattr(settings, "db_schema")  # noqa: B009
        relay = OutboxRelay(
            pool,
            lambda: make_producer(settings, client_id=client_id or f"{self.name}-relay"),
            lock_name=f"{schema}.outbox",
        )
        self._relay = (pool, relay)
        if enabled:
            self._work.append(("relay", relay.run, True))
        return relay

    def consumer(
        self,
        consumer: IdempotentConsumer,
        *,
        task: str | None = None,
        enabled: bool = True,
        check: str | None = None,
        run: Work | None = None,
    ) -> IdempotentConsumer:
        """Run a consumer once the topics (and its dead-letter topics) exist. `check`: the readiness entry that
        says whether it has partitions (informative); `run`: what the task runs instead of `consumer.run`."""
        self.topics(consumer.dead_letter_topics())
        if enabled:
            self._work.append((task or consumer.name, run or consumer.run, True))
        if check is not None:
            self.check(check, _assigned(consumer))
        return consumer

    def task(self, name: str, work: Work, *, needs_topics: bool = False) -> None:
        """A background loop, restarted with backoff when it fails and cancelled at shutdown."""
        self._work.append((name, work, needs_topics))

    def check(self, name: str, check: Check) -> None:
        """A readiness entry: `check()` gives `{"ok": bool, "required": bool (default True), ...}`."""
        self._checks.append((name, check))

    def describe(self, **fields: Any) -> None:
        """Fields for the `<log_name>.started` line (never personal data); host and port are there already."""
        self.described.update(fields)

    def on_stop(self, cleanup: Cleanup) -> None:
        """Run at shutdown, after every task has stopped and before the pools close (last registered first)."""
        self._cleanups.append(cleanup)

    async def readiness(self) -> dict[str, Any]:
        """The service's readiness checks (see the module docstring)."""
        checks: dict[str, Any] = {}
        if self._relay is not None:
            checks.update(await outbox_readiness(*self._relay))
        for name, check in self._checks:
            checks[name] = await check()
        return checks

    def start(self) -> None:
        """Start the registered work as supervised tasks, in registration order."""

        async def create_topics() -> None:
            await ensure_topics(self.settings, list(self._topics.values()), deadline_seconds=float("inf"))

        for name, work, needs_topics in self._work:
            run = after(create_topics, work) if needs_topics and self._topics else work
            self.tasks.append(asyncio.create_task(supervise(name, run), name=f"{self.name}:{name}"))

    async def stop(self, grace: float) -> None:
        """Stop the tasks, then run the clean-ups, then close the pools (see the module docstring)."""
        try:
            await stop_all(self.tasks, grace)
        finally:
            try:
                for cleanup in reversed(self._cleanups):
                    try:
                        result = cleanup()
                        if inspect.isawaitable(result):
                            await result
                    except Exception as exc:  # the other clean-ups and the pools must still be closed
                        log.error("service.cleanup_failed", service=self.name, error=f"{type(exc).__name__}: {exc}")
            finally:
                for pool in reversed(self._pools):
                    await close_pool(pool)


def _assigned(consumer: IdempotentConsumer) -> Check:
    async def check() -> dict[str, Any]:
        return {"ok": consumer.assigned, "required": False}

    return check


def service_app(
    name: str,
    settings: ServiceSettings,
    bootstrap: Callable[[Host], Awaitable[object]],
    *,
    title: str,
    summary: str,
    max_body_bytes: int,
    version: str = "1.0.0",
    migrations: Path | None = None,
    log_name: str | None = None,
    inner_middleware: Sequence[Middleware] = (),
    grace: float = 10.0,
    **fastapi_options: Any,
) -> FastAPI:
    """A FastAPI app whose lifespan is the host's (see the module docstring), with the operational routes and
    middlewares of `install_common`. `log_name`: the prefix of the started/stopped log events (default `name`);
    `inner_middleware`: middlewares that run inside the common ones (after the body limit and the request context),
    the first innermost; a middleware added to the app afterwards runs outside them all."""
    event = log_name or name
    hosts: list[Host] = []  # the running host; a lifespan started again (tests) gets a fresh one

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level, settings.log_json)
        configure_telemetry(name, settings)
        if migrations is not None:
            await migrate(settings.database_url, getattr(settings, "db_schema"), migrations)  # noqa: B009
        host = Host(name, settings)
        try:
            state = await bootstrap(host)
            setattr(app.state, _SLOT, state)
            hosts[:] = [host]
            host.start()
            log.info(f"{event}.started", **host.described)
            yield
        finally:
            hosts.clear()
            await host.stop(grace)
            log.info(f"{event}.stopped")
            flush_telemetry()

    # FastAPI's own telemetry off: the request's server span is the kit's (`HostedApp`). FastAPI's cost intake ~12 %
    # of its CPU even with nothing sampled (it wraps every ASGI message and looks for log and metric providers on
    # each request), and its spans for dependency solving and the endpoint add nothing the database spans do not say.
    fastapi_options.setdefault(
        "telemetry", {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    )
    app = HostedApp(title=title, version=version, summary=summary, lifespan=lifespan, **fastapi_options)

    async def readiness() -> dict[str, Any]:
        if not hosts:
            return {"service": {"ok": False, "error": "not started"}}
        return await hosts[0].readiness()

    for middleware in inner_middleware:
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    install_common(
        app, readiness, max_body_bytes=max_body_bytes, service=name, internal_networks=settings.internal_networks
    )
    return app


class HostedApp(FastAPI):
    """A hosted service's app: while telemetry records, each HTTP request is one server span around everything,
    every middleware included (services/kit/http.py `traced`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and recording():
            await traced(super().__call__, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def app_state(app: FastAPI, kind: type[StateT]) -> StateT:
    """The state the app's bootstrap returned (a `LookupError` before it has started, a `TypeError` if it is not a
    `kind`)."""
    state = getattr(app.state, _SLOT, None)
    if state is None:
        raise LookupError(f"{app.title}: the service has not started")
    if not isinstance(state, kind):
        raise TypeError(f"the service's state is a {type(state).__name__}, not a {kind.__name__}")
    return state


def state_dependency(kind: type[StateT]) -> Callable[[Request], Awaitable[StateT]]:
    """A FastAPI dependency giving a route the service's state: `Annotated[State, Depends(state_dependency(State))]`.
    (A coroutine: FastAPI would run a plain function in a worker thread.)"""

    async def dependency(request: Request) -> StateT:
        state = getattr(request.app.state, _SLOT, None)
        if not isinstance(state, kind):
            return app_state(request.app, kind)  # raises with the reason
        return state

    dependency.__name__ = f"{kind.__name__.lower()}_state"
    return dependency


def add_first(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Put `routes` ahead of the app's other routes (Starlette tries them in order: the busiest first)."""
    app.router.routes[:0] = routes


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put the routers' routes on the app itself rather than including the routers (FastAPI keeps an included router
    as one opaque route): for a middleware or a test that finds a route among `app.routes` by its path."""
    for router in routers:
        app.router.routes.extend(router.routes)
