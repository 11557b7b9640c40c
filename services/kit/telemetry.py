"""OpenTelemetry set-up: an SDK tracer provider that records the kit's spans, and where they are exported.

Off unless configured (`OTEL_TRACES_EXPORTER`, or an OTLP endpoint): then no SDK is installed and the kit's hops
stay cheap non-recording spans that only carry the trace context (services/kit/tracing.py). On, every HTTP
request (services/kit/http.py `traced`), every consumed event and published outbox
batch (services/kit/consumer.py, outbox.py) and every database call (the asyncpg instrumentation) is a recorded span,
exported with OTLP over HTTP to a collector, or written to the console or a file in development. A request's server
span is the kit's own (services/kit/service.py `HostedApp`, services/kit/tracing.py `ServerSpan`); FastAPI's native
telemetry is off, as it cost intake ~12 % of its CPU even with nothing sampled.

Cost (`make bench-spans`; figures in the README): the SDK's Python costs some 40 µs of CPU per recorded span, export
included, so a service whose unit of work is ~90 µs (the consent gate) or ~1 ms (intake) pays a quarter of its
throughput when every trace is recorded. `OTEL_TRACES_SAMPLER_ARG` sets the ratio of root traces recorded (0.1 in
production: ~2 %); a trace's later hops follow its first one's decision (the parent-based sampler), and a hop that
is not sampled is made without the SDK and suppresses the instrumentations inside it.
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
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
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


class _Switch(SpanProcessor):
    """The one processor of the process's one provider, forwarding to the exporter configured now: the API sets a
    global provider once per process, and tests configure and shut telemetry down again and again."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        target = self.target
        if target is not None:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        target = self.target
        if target is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        target, self.target = self.target, None
        if target is not None:
            target.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True


_state: dict[str, object] = {}


def configure_telemetry(
    service_name: str, settings: TelemetrySettings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Record and export spans as `settings` say (nothing when off); `exporter` replaces the configured one (tests).

    A second call while recording (several services in one test process) keeps what the first configured."""
    if recording_now():
        provider = _state["provider"]
        assert isinstance(provider, TracerProvider)
        return provider
    chosen = settings.exporter_name()
    if exporter is None and chosen == "none":
        return None
    processor: SpanProcessor
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    elif chosen == "console":
        out: IO[str] = sys.stdout
        if settings.otel_traces_file:
            out = open(settings.otel_traces_file, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
            _state["file"] = out
        processor = BatchSpanProcessor(ConsoleSpanExporter(out=out))
    else:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint()))
    provider = _state.get("provider")
    switch = _state.get("switch")
    if not isinstance(provider, TracerProvider) or not isinstance(switch, _Switch):
        resource = Resource.create({SERVICE_NAME: settings.otel_service_name or service_name})
        sampler = ParentBased(root=_NoOrphanClientSpans(settings.otel_traces_sampler_arg))
        provider = TracerProvider(resource=resource, sampler=sampler)
        switch = _Switch()
        provider.add_span_processor(switch)
        trace.set_tracer_provider(provider)  # FastAPI's server spans use the global provider
        _state["provider"], _state["switch"] = provider, switch
    switch.target = processor
    # The statement's text only: its parameters are personnummer and certificate documents (and cost to format).
    AsyncPGInstrumentor(capture_parameters=False).instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    tracing.start_recording(provider)
    log.info("telemetry.configured", exporter="test" if exporter else chosen, service=service_name)
    return provider


def recording_now() -> bool:
    """Whether telemetry is configured and recording in this process."""
    return tracing.recording()


def flush_telemetry(timeout_millis: int = 10_000) -> bool:
    """Export what is buffered now (a service's last step when it stops: uvicorn ends the process by re-raising
    SIGTERM, so the SDK's exit hook never runs and the last batch would be lost). Other services of the process
    keep recording."""
    switch = _state.get("switch")
    if not tracing.recording() or not isinstance(switch, _Switch):
        return True
    return switch.force_flush(timeout_millis)


def shutdown_telemetry() -> None:
    """Export what is buffered and go back to non-recording hops (at exit, and between tests)."""
    switch = _state.get("switch")
    if not tracing.recording() or not isinstance(switch, _Switch):
        return
    tracing.stop_recording()
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    switch.shutdown()
    out = _state.pop("file", None)
    if out is not None and hasattr(out, "close"):
        out.close()
