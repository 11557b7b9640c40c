"""OpenTelemetry set-up: an SDK tracer provider that records the kit's spans, and where they are exported.

Off unless configured (`OTEL_TRACES_EXPORTER`, or an OTLP endpoint): then no SDK is installed and the kit's hops
stay cheap non-recording spans that only carry the trace context (services/kit/tracing.py). On, every HTTP
request (the OpenTelemetry ASGI middleware, in services/kit/http.py), every consumed event and published outbox
batch (services/kit/consumer.py, outbox.py) and every database call (the asyncpg instrumentation) is a recorded span,
exported with OTLP over HTTP to a collector, or written to the console or a file in development.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from services.kit import tracing
from services.kit.settings import TelemetrySettings

log = structlog.get_logger(__name__)


class _NoOrphanClientSpans(Sampler):
    """Root spans as the ratio says, except a database call outside any trace (the relay's and consumers' polling
    between events): thousands of one-span traces an hour that say nothing."""

    def __init__(self, ratio: float) -> None:
        self._root = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        return self._root.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self._root.get_description()}}}"


_state: dict[str, object] = {}


def configure_telemetry(
    service_name: str, settings: TelemetrySettings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Record and export spans as `settings` say (nothing when off); `exporter` replaces the configured one (tests).

    Once per process: a second call (several services in one test process) keeps the provider of the first."""
    existing = _state.get("provider")
    if isinstance(existing, TracerProvider):
        return existing
    chosen = settings.exporter_name()
    if exporter is None and chosen == "none":
        return None
    resource = Resource.create({SERVICE_NAME: settings.otel_service_name or service_name})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(root=_NoOrphanClientSpans(settings.otel_traces_sampler_arg))
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif chosen == "console":
        out: IO[str] = sys.stdout
        if settings.otel_traces_file:
            out = open(settings.otel_traces_file, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
            _state["file"] = out
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=out)))
    else:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint())))
    # The global provider for the instrumentation packages; set once per process by the API, so a test that resets
    # and configures again passes its provider to each of them explicitly as well.
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    tracing.start_recording(provider)
    _state["provider"] = provider
    log.info("telemetry.configured", exporter="test" if exporter else chosen, service=service_name)
    return provider


def shutdown_telemetry() -> None:
    """Export what is buffered and go back to non-recording hops (at exit, and between tests)."""
    provider = _state.pop("provider", None)
    if not isinstance(provider, TracerProvider):
        return
    tracing.stop_recording()
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    provider.shutdown()
    out = _state.pop("file", None)
    if out is not None and hasattr(out, "close"):
        out.close()
