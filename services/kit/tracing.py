"""W3C trace context (OpenTelemetry's propagator) from the intake request through every Kafka hop.

Each hop — an HTTP request, the handling of one consumed event — is a span of the caller's trace: same trace id,
a new span id. The events a hop emits carry that span as their `traceparent`, so a certificate can be followed
from the national platform's request to the portal and dispatch. The trace id is bound into every log line.
No span is exported: there is no collector in this stack; adding the OpenTelemetry SDK with an exporter would
record the same spans without changing this module's callers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _parent(traceparent: str | None) -> SpanContext | None:
    if not traceparent:
        return None
    span_context = trace.get_current_span(_PROPAGATOR.extract({"traceparent": traceparent})).get_span_context()
    return span_context if span_context.is_valid else None


def new_hop(traceparent: str | None) -> SpanContext:
    """A span in `traceparent`'s trace (same trace id and flags, new span id), or the root of a new trace when there
    is no parent or it is malformed."""
    parent = _parent(traceparent)
    span_id = random.getrandbits(64) or 1
    if parent is None:
        return SpanContext(random.getrandbits(128) or 1, span_id, is_remote=False, trace_flags=_SAMPLED)
    return SpanContext(parent.trace_id, span_id, is_remote=False, trace_flags=parent.trace_flags)


def format_traceparent(span_context: SpanContext) -> str:
    """The `traceparent` header value of a span."""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def child_traceparent(traceparent: str | None) -> str:
    """The `traceparent` of a new hop under `traceparent` (see `new_hop`)."""
    return format_traceparent(new_hop(traceparent))


def trace_id(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a well-formed `traceparent`, else None."""
    parent = _parent(traceparent)
    return f"{parent.trace_id:032x}" if parent else None


@contextmanager
def hop(traceparent: str | None) -> Iterator[str]:
    """Run a block as a new hop under `traceparent`: it is the current span (for `current_traceparent`) and its trace
    id is in every log line. Yields the hop's own `traceparent`, for the events it emits."""
    span_context = new_hop(traceparent)
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
    structlog.contextvars.bind_contextvars(trace_id=f"{span_context.trace_id:032x}")
    try:
        yield format_traceparent(span_context)
    finally:
        structlog.contextvars.unbind_contextvars("trace_id")
        otel_context.detach(token)


def current_traceparent() -> str | None:
    """The `traceparent` of the current hop, if any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
