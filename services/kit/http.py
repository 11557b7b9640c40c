"""HTTP plumbing every service mounts: health, readiness, Prometheus metrics, correlation ids, body limits."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.tracing import hop, recording

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]

REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def operational_router(readiness: ReadinessCheck) -> APIRouter:
    """/healthz (the process runs), /readyz (it can do its work), /metrics (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(c.get("ok", False) for c in checks.values() if c.get("required", True))
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestContextMiddleware:
    """Binds a correlation id per request (X-Correlation-ID or a new one), makes the request a hop of the caller's
    trace (`traceparent`, or a new trace), and records latency per route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if recording():  # the request is FastAPI's own server span (services/kit/telemetry.py), current already
            await self._handle(scope, receive, send)
            return
        with hop(dict(scope.get("headers") or []).get(b"traceparent", b"").decode("latin-1") or None):
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = supplied if 0 < len(supplied) <= 100 and supplied.isprintable() else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-correlation-id", correlation_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], path, str(status)).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("correlation_id")


class BodySizeLimitMiddleware:
    """Answers 413 to a request body larger than `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send)
            return
        # Bodies here are small (bounded by max_bytes), so buffering lets us answer 413 before the app runs.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


class BearerGate:
    """Authenticates callers by bearer secret on `path_prefix` before anything else reads the request.

    The caller's name goes to `scope["state"]["caller"]`. A body that is not JSON is refused with 415.
    """

    def __init__(self, app: ASGIApp, tokens: dict[str, SecretStr], path_prefix: str, what: str = "caller") -> None:
        self.app = app
        self.tokens = [(name, secret.get_secret_value().encode()) for name, secret in tokens.items()]
        self.path_prefix = path_prefix
        self.what = what

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        name = self._caller(headers.get(b"authorization", b""))
        if name is None:
            response = JSONResponse(
                {"detail": f"missing or invalid {self.what} credential"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif headers.get(b"content-length", b"0") != b"0" and not headers.get(b"content-type", b"").startswith(
            b"application/json"
        ):
            response = JSONResponse({"detail": "Content-Type must be application/json"}, status_code=415)
        else:
            scope.setdefault("state", {})["caller"] = name
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _caller(self, authorization: bytes) -> str | None:
        scheme, _, presented = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            return None
        matched = None
        for name, secret in self.tokens:  # compare with every secret: the time taken does not reveal which
            if hmac.compare_digest(presented.strip(), secret):
                matched = name
        return matched


def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    graceful_seconds: int = 10,
    tls: tuple[str, str] | None = None,
) -> None:
    """Run an app with uvicorn the way every service runs: uvloop, httptools, our logging, no access log; HTTPS
    when given (certificate file, key file) (services/kit/tls.py)."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_seconds,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )


def document_request_body(app: FastAPI, name: str, schema: dict[str, Any]) -> None:
    """Add to the app's OpenAPI document the schema of a body a route validates itself (FastAPI cannot see it);
    routes refer to it as `#/components/schemas/<name>`. `schema` uses that ref template for its definitions."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            definitions = dict(schema)
            components.update(definitions.pop("$defs", {}))
            components[name] = definitions
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_common(
    app: FastAPI, readiness: ReadinessCheck, *, max_body_bytes: int, internal_networks: Iterable[str] = ()
) -> None:
    """Mount the operational routes and the middlewares every service uses, and the answer to an abuse limit."""
    from services.kit.internal import DEFAULT_INTERNAL_NETWORKS, InternalOnly, parse_networks
    from services.kit.ratelimit import TooManyRequests, too_many_requests

    app.include_router(operational_router(readiness))
    app.add_exception_handler(TooManyRequests, too_many_requests)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(InternalOnly, networks=parse_networks(internal_networks or DEFAULT_INTERNAL_NETWORKS))
    app.add_middleware(RequestContextMiddleware)
