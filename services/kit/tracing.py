"""W3C trace context (OpenTelemetry's propagator) from the intake request through every Kafka hop.

Each hop — an HTTP request, the handling of one consumed event — is a span of the caller's trace: same trace id,
a new span id. The events a hop emits carry that span as their `traceparent`, so a certificate can be followed
from the national platform's request to the portal, dispatch and statistics. Log lines carry the current span's
trace and span ids (services/kit/logging.py).

Two modes. Without telemetry (the default locally) a hop is a non-recording span made here in a microsecond, only to
carry the context. With telemetry configured (services/kit/telemetry.py) a hop is a recorded span of the SDK's
tracer, exported with the rest.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

_PROPAGATOR = TraceContextTextMapPropagator()
# The SDK's tracer while telemetry records (None: hops are non-recording spans made here).
_recorder: dict[str, Tracer | TracerProvider] = {}


def start_recording(provider: TracerProvider) -> None:
    """Make hops recorded spans of `provider` (called by services.kit.telemetry)."""
    _recorder["provider"] = provider
    _recorder["tracer"] = provider.get_tracer("minaintyg.kit")


def stop_recording() -> None:
    """Back to non-recording hops."""
    _recorder.clear()


def recording_provider() -> TracerProvider | None:
    """The provider hops are recorded with, if telemetry records."""
    provider = _recorder.get("provider")
    return provider if isinstance(provider, TracerProvider) else None


def recording() -> bool:
    """Whether hops are recorded spans."""
    return "tracer" in _recorder


def _tracer() -> Tracer | None:
    tracer = _recorder.get("tracer")
    return tracer if isinstance(tracer, Tracer) else None


# The W3C header as OpenTelemetry's propagator reads it; parsed here directly because every consumed event goes
# through it (the propagator's extract costs ~15 µs, this ~1 µs).
_TRACEPARENT = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*$")


def _parent(traceparent: str | None) -> tuple[str, str] | None:
    """(trace id, flags) of a well-formed header, as hex."""
    match = _TRACEPARENT.match(traceparent) if traceparent else None
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_hex == _ZERO_TRACE or span_hex == _ZERO_SPAN:
        return None
    return trace_hex, flags


_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def child_traceparent(traceparent: str | None) -> str:
    """The `traceparent` of a new hop under `traceparent`: same trace id and flags, a new span id; or the root of a
    new (sampled) trace when there is no parent or it is malformed."""
    parent = _parent(traceparent)
    trace_hex, flags = parent or (f"{random.getrandbits(128) or 1:032x}", "01")
    return f"00-{trace_hex}-{random.getrandbits(64) or 1:016x}-{flags}"


def trace_id(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a well-formed `traceparent`, else None."""
    parent = _parent(traceparent)
    return parent[0] if parent else None


def _parent_context(traceparent: str | None) -> Context:
    """A context whose current span is the remote parent `traceparent` names, or an empty one (a new trace)."""
    match = _TRACEPARENT.match(traceparent) if traceparent else None
    if match is None or _parent(traceparent) is None:
        return Context()
    _version, trace_hex, span_hex, flags, _rest = match.groups()
    remote = SpanContext(int(trace_hex, 16), int(span_hex, 16), True, TraceFlags(int(flags, 16)))
    return trace.set_span_in_context(NonRecordingSpan(remote), Context())


def link_to(traceparent: str | None) -> Link | None:
    """A span link to the span `traceparent` names, if it is well-formed."""
    span = trace.get_current_span(_parent_context(traceparent))
    context = span.get_span_context()
    return Link(context) if context.is_valid else None


def format_traceparent(context: SpanContext) -> str:
    """The W3C header of a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


Attributes = Mapping[str, AttributeValue]


def _unsampled(traceparent: str | None) -> bool:
    """Whether `traceparent` is a well-formed parent that was not sampled: its hops are not recorded either (the
    parent-based sampler's rule), so they are made as with telemetry off, without the SDK's cost."""
    parent = _parent(traceparent)
    return parent is not None and not int(parent[1], 16) & 1


def _uninstrumented(context: Context) -> Context:
    """`context` with the instrumentations (asyncpg) suppressed: for a hop or request that is not recorded, whose
    database spans the parent-based sampler would drop anyway."""
    return otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, context)


def will_record(traceparent: str | None) -> bool:
    """Whether a hop under `traceparent` may be recorded: telemetry is on and the parent, if any, was sampled
    (callers build a span's attributes only then)."""
    return recording() and not _unsampled(traceparent)


def start_hop(
    traceparent: str | None,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> tuple[Span | None, str]:
    """Begin a hop under `traceparent` without making it current (for many events handled together): the recorded
    span (end it with `end_hop`) or None when telemetry is off or the parent was not sampled, and the hop's own
    `traceparent`."""
    tracer = _tracer()
    if tracer is None or _unsampled(traceparent):
        return None, child_traceparent(traceparent)
    span = tracer.start_span(name, context=_parent_context(traceparent), kind=kind, attributes=attributes)
    return span, format_traceparent(span.get_span_context())


def continue_trace(traceparent: str | None, name: str) -> str:
    """The `traceparent` for an event that continues the trace of `traceparent` from within another one (consent
    releasing a held certificate in the consent request): recorded, a span of that trace linked to the current
    span; otherwise just a child id (`child_traceparent`)."""
    tracer = _tracer()
    if tracer is None:
        return child_traceparent(traceparent)
    current = trace.get_current_span().get_span_context()
    span = tracer.start_span(
        name, context=_parent_context(traceparent), links=[Link(current)] if current.is_valid else ()
    )
    span.end()
    return format_traceparent(span.get_span_context())


def end_hop(span: Span | None, error: BaseException | None = None) -> None:
    """End a hop begun by `start_hop`, marked as failed by `error`."""
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span.end()


@contextmanager
def hop(
    traceparent: str | None,
    name: str = "hop",
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
    links: Sequence[Link] = (),
) -> Iterator[str]:
    """Run a block as a new hop under `traceparent`: it is the current span (for `current_traceparent` and the log
    lines' trace and span ids). Yields the hop's own `traceparent`, for the events it emits."""
    tracer = _tracer()
    if tracer is not None and not _unsampled(traceparent):
        with tracer.start_as_current_span(
            name, context=_parent_context(traceparent), kind=kind, attributes=attributes, links=links
        ) as span:
            token = None if span.is_recording() else otel_context.attach(_uninstrumented(otel_context.get_current()))
            try:
                yield format_traceparent(span.get_span_context())
            finally:
                if token is not None:
                    otel_context.detach(token)
        return
    mine = child_traceparent(traceparent)
    _version, trace_hex, span_hex, flags = mine.split("-")
    quiet = NonRecordingSpan(SpanContext(int(trace_hex, 16), int(span_hex, 16), False, TraceFlags(int(flags, 16))))
    context = trace.set_span_in_context(quiet)
    if tracer is not None:  # recording, but this trace is not sampled
        context = _uninstrumented(context)
    token = otel_context.attach(context)
    try:
        yield mine
    finally:
        otel_context.detach(token)


# OpenTelemetry's HTTP semantic conventions: other methods are "_OTHER" (the original in its own attribute).
_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})


class ServerSpan:
    """One HTTP request as a recorded server span of the caller's trace, current while the request runs.

    The HTTP server semantic conventions (stable): named `METHOD route` once the router has matched (the method
    alone before that); `http.request.method`, `url.scheme`, `url.path`, `http.route`, `http.response.status_code`;
    a 5xx answer or an exception marks it failed with `error.type`. The query string is not recorded (it may hold
    anything a client sent)."""

    __slots__ = ("_method", "_span", "_token")

    def __init__(self, tracer: Tracer, traceparent: str | None, method: str, scheme: str, path: str) -> None:
        known = method if method in _KNOWN_METHODS else "_OTHER"
        attributes: dict[str, AttributeValue] = {"http.request.method": known, "url.scheme": scheme, "url.path": path}
        if known != method:
            attributes["http.request.method_original"] = method
        self._method = "HTTP" if known == "_OTHER" else known
        self._span = tracer.start_span(
            self._method, context=_parent_context(traceparent), kind=SpanKind.SERVER, attributes=attributes
        )
        context = trace.set_span_in_context(self._span)
        if not self._span.is_recording():  # not sampled
            context = _uninstrumented(context)
        self._token = otel_context.attach(context)

    def end(self, *, route: str | None, status: int | None, error: BaseException | None) -> None:
        """End it with what the request came to (`status` None: no answer was begun)."""
        otel_context.detach(self._token)
        span = self._span
        if span.is_recording():
            if route is not None:
                span.update_name(f"{self._method} {route}")
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None or status is None or status >= 500:
                span.set_attribute(
                    "error.type", type(error).__qualname__ if error is not None else str(status or "incomplete")
                )
                span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()


def server_span(traceparent: str | None, method: str, scheme: str, path: str) -> ServerSpan | None:
    """The server span of a request (see `ServerSpan`), or None while telemetry is off."""
    tracer = _tracer()
    return None if tracer is None else ServerSpan(tracer, traceparent, method, scheme, path)


def current_traceparent() -> str | None:
    """The `traceparent` of the current hop, if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
