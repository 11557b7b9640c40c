"""HTTP plumbing every service mounts: health, readiness, Prometheus metrics, correlation ids, body limits."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import SecretStr
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.problems import ErrorBody, ValidationErrorBody
from services.kit.tls import MutualTls
from services.kit.tracing import hop, recording, server_span

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
log = structlog.get_logger(__name__)

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

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "The Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestContextMiddleware:
    """Binds a correlation id per request (X-Correlation-ID or a new one), makes the request a hop of the caller's
    trace (`traceparent`, or a new trace), and records latency per route."""

    def __init__(self, app: ASGIApp, service: str | None = None) -> None:
        self.app = app
        # Bound per request too: the lifespan that configures logging runs in a task of its own, so its binding of
        # the service name does not reach the requests' context.
        self.service = {"service": service} if service else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if recording():  # the request is a server span already, current (`traced`, outside every middleware)
            await self._handle(scope, receive, send)
            return
        with hop(dict(scope.get("headers") or []).get(b"traceparent", b"").decode("latin-1") or None):
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = supplied if 0 < len(supplied) <= 100 and supplied.isprintable() else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id, **self.service)
        status = 500
        responded = False
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = message.setdefault("headers", [])
                headers.append((b"x-correlation-id", correlation_id.encode()))
                if status == 405 and (methods := allowed_methods(scope)) is not None:
                    # Starlette names the methods of the first route with the path only; Allow lists them all.
                    allow = ", ".join(sorted(methods)).encode()
                    message["headers"] = [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", allow)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Answered here, inside the middlewares that add the security headers, and logged while the request's
            # correlation id and trace are still bound (Starlette's own 500 is outside them all).
            log.exception("http.request.failed", method=scope["method"], route=_route_of(scope))
            if responded:
                raise  # the answer has begun: nothing better can be sent
            await server_error()(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            REQUEST_SECONDS.labels(scope["method"], _route_of(scope), str(status)).observe(elapsed)
            structlog.contextvars.unbind_contextvars("correlation_id")


async def traced(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run an HTTP request as one recorded server span of the caller's trace (telemetry on; `ServerSpan` in
    services/kit/tracing.py says what it holds), or just run it (off). The service host wraps its whole app in
    this, so the span covers every middleware's answer too (a 401, 413 or 429 is a span of the caller's trace)."""
    headers = scope.get("headers") or ()
    traceparent = next((v.decode("latin-1") for k, v in headers if k == b"traceparent"), None)
    span = server_span(traceparent, scope["method"], scope.get("scheme", "http"), scope["path"])
    if span is None:
        await app(scope, receive, send)
        return
    status: int | None = None

    async def send_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    error: BaseException | None = None
    try:
        await app(scope, receive, send_status)
    except BaseException as exc:
        error = exc
        raise
    finally:
        route = getattr(scope.get("route"), "path", None)
        span.end(route=route if isinstance(route, str) else None, status=status, error=error)


def allowed_methods(scope: Scope) -> set[str] | None:
    """The methods the app's routes take at the request's path (None: a route there takes any, e.g. a mount)."""
    methods: set[str] = set()
    for route in _flat(getattr(getattr(scope.get("app"), "router", None), "routes", [])):
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            return None
        methods |= set(route_methods)
    return methods


def _flat(routes: list[Any]) -> Iterator[Any]:
    """The routes, with those of included routers (FastAPI keeps an included router as one route of its own)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from _flat(candidates())
        else:
            yield route


def _route_of(scope: Scope) -> str:
    """The matched route's template (never the raw path, which may hold anything the client sent)."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


def server_error() -> JSONResponse:
    """The answer to a request that failed in the service (a new one each time: middlewares add to its headers).
    The correlation id (added by the middleware) lets an operator find its log line; nothing about the failure is
    told to the client."""
    return JSONResponse(
        {"detail": "internal error: the request could not be completed (quote the X-Correlation-ID if you report it)"},
        status_code=500,
        headers={"Cache-Control": "no-store"},
    )


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
        methods = allowed_methods(scope)
        if methods and scope["method"] not in methods:
            await self.app(scope, receive, send)  # the router answers 405 (or 404) without reading anything
            return
        headers = dict(scope.get("headers") or [])
        name = self._caller(headers.get(b"authorization", b""))
        if name is None:
            response = JSONResponse(
                {"detail": f"missing or invalid {self.what} credential"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif has_body(headers) and not is_json(headers.get(b"content-type", b"")):
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


def has_body(headers: dict[bytes, bytes]) -> bool:
    """Whether a request has a body: a non-zero Content-Length, or any Transfer-Encoding (chunked: no length)."""
    return headers.get(b"content-length", b"0").strip() not in (b"0", b"") or b"transfer-encoding" in headers


def is_json(content_type: bytes) -> bool:
    """Whether a Content-Type is exactly application/json (parameters such as charset allowed)."""
    return content_type.partition(b";")[0].strip().lower() == b"application/json"


def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    graceful_seconds: int = 10,
    tls: tuple[str, str] | None = None,
    mutual_tls: MutualTls | None = None,
) -> None:
    """Run an app with uvicorn the way every service runs: uvloop, httptools, our logging, no access log; HTTPS
    when given (certificate file, key file) (services/kit/tls.py), and a second listener requiring client
    certificates when given (services/kit/mutual.py)."""
    import uvicorn

    options: dict[str, Any] = {
        "app": app,
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": graceful_seconds,
        "ssl_certfile": tls[0] if tls else None,
        "ssl_keyfile": tls[1] if tls else None,
    }
    if mutual_tls is None:
        uvicorn.run(**options)
        return
    from services.kit.mutual import serve_with_mutual_tls

    serve_with_mutual_tls(options, mutual_tls)


def document_request_body(app: FastAPI, name: str, schema: dict[str, Any]) -> None:
    """Add to the app's OpenAPI document the schema of a body a route validates itself (FastAPI cannot see it);
    routes refer to it as `#/components/schemas/<name>`. `schema` uses that ref template for its definitions."""
    definitions = dict(schema)
    extra = {**definitions.pop("$defs", {}), name: definitions}
    document_errors(app, extra)


def document_errors(app: FastAPI, extra_schemas: dict[str, Any] | None = None) -> None:
    """The app's OpenAPI document as the services answer: a 422 is our `{detail, problems}` body (not FastAPI's), a
    body that cannot be parsed is a 400, and every error body is JSON `{detail}`. `extra_schemas`: components to add."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(extra_schemas or {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            problems = ValidationErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problems.pop("$defs", {}))
            components["ValidationErrorBody"] = problems
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    _our_errors(operation)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_body(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _our_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code, response in responses.items():
        if code == "422":
            response["content"] = _json_body("ValidationErrorBody")
        elif code[:1] in ("4", "5") and "content" not in response:
            response["content"] = _json_body("ErrorBody")
    if "requestBody" in operation:
        responses.setdefault("400", {"description": "The body cannot be parsed", "content": _json_body("ErrorBody")})
        responses.setdefault("413", {"description": "Body too large", "content": _json_body("ErrorBody")})


def install_common(
    app: FastAPI,
    readiness: ReadinessCheck,
    *,
    max_body_bytes: int,
    service: str | None = None,
    internal_networks: Iterable[str] = (),
) -> None:
    """Mount the operational routes and the middlewares every service uses, and the answer to an abuse limit."""
    from services.kit.internal import DEFAULT_INTERNAL_NETWORKS, InternalOnly, parse_networks
    from services.kit.ratelimit import TooManyRequests, too_many_requests

    app.include_router(operational_router(readiness))
    document_errors(app)
    app.add_exception_handler(TooManyRequests, too_many_requests)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(InternalOnly, networks=parse_networks(internal_networks or DEFAULT_INTERNAL_NETWORKS))
    app.add_middleware(RequestContextMiddleware, service=service)
