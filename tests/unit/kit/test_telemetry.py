"""Telemetry: off by default; configured, hops and HTTP requests are recorded spans of the caller's trace, and every
log line names the current trace and span."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr

from services.kit import telemetry
from services.kit.http import BearerGate
from services.kit.logging import configure_logging
from services.kit.service import Host, service_app
from services.kit.settings import ServiceSettings, TelemetrySettings
from services.kit.telemetry import configure_telemetry, flush_telemetry, shutdown_telemetry
from services.kit.tracing import (
    continue_trace,
    current_traceparent,
    end_hop,
    hop,
    recording,
    start_hop,
    trace_id,
    will_record,
)

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert configure_telemetry("unit-test", ServiceSettings(), exporter=exporter) is not None
    try:
        yield exporter
    finally:
        shutdown_telemetry()
    assert not recording()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def test_telemetry_is_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert TelemetrySettings().exporter_name() == "none"
    assert configure_telemetry("unit-test", TelemetrySettings()) is None
    assert not recording()


@pytest.mark.parametrize(
    ("env", "exporter", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "otlp", "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/x"}, "otlp", "http://c:4318/x"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console", "http://localhost:4318/v1/traces"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, "none", "http://localhost:4318/v1/traces"),
    ],
)
def test_the_standard_variables_choose_the_exporter(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exporter: str, endpoint: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ServiceSettings()
    assert settings.exporter_name() == exporter
    assert settings.otlp_traces_endpoint() == endpoint


def test_a_recorded_hop_is_a_child_of_its_parent(spans: InMemorySpanExporter) -> None:
    with hop(PARENT, "process t", kind=SpanKind.CONSUMER, attributes={"messaging.system": "kafka"}) as mine:
        assert current_traceparent() == mine
        assert trace_id(mine) == trace_id(PARENT)
    (span,) = spans.get_finished_spans()
    assert span.name == "process t"
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.context is not None
    assert mine == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


def test_a_failing_hop_is_recorded_as_failed(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), hop(PARENT, "fails"):
        raise RuntimeError("boom")
    span, traceparent = start_hop(PARENT, "batch member")
    end_hop(span, ValueError("bad"))
    assert trace_id(traceparent) == trace_id(PARENT)
    assert [s.status.status_code.name for s in spans.get_finished_spans()] == ["ERROR", "ERROR"]


def test_without_a_parent_a_hop_starts_a_trace(spans: InMemorySpanExporter) -> None:
    with hop("garbage", "root") as mine:
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert trace_id(mine) is not None


@pytest.mark.usefixtures("restore_logging")
def test_every_log_line_names_the_current_trace_and_span(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("unit-test")
    log = structlog.get_logger("unit")
    with hop(PARENT, "logged") as mine:
        log.info("inside.structlog")
        logging.getLogger("stdlib").warning("inside.stdlib")
    log.info("outside")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    _version, trace_hex, span_hex, _flags = mine.split("-")
    inside = [line for line in lines if str(line["event"]).startswith("inside")]
    assert len(inside) == 2
    for line in inside:
        assert (line["trace_id"], line["span_id"]) == (trace_hex, span_hex)
    (outside,) = [line for line in lines if line["event"] == "outside"]
    assert "trace_id" not in outside


@pytest.mark.usefixtures("restore_logging")
def test_log_lines_name_the_hop_with_telemetry_off_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test")
    with hop(PARENT) as mine:
        structlog.get_logger("unit").info("inside")
    (line,) = [orjson.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line["trace_id"] == trace_id(PARENT)
    assert line["span_id"] == mine.split("-")[2]


def _hosted() -> FastAPI:
    async def bootstrap(host: Host) -> object:
        return object()

    return service_app("hosted", ServiceSettings(), bootstrap, title="t", summary="s", max_body_bytes=1024)


@pytest.mark.usefixtures("restore_logging")
async def test_an_http_request_is_a_server_span_named_by_its_route(spans: InMemorySpanExporter) -> None:
    app = _hosted()
    seen: dict[str, Any] = {}

    @app.get("/v1/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        seen["traceparent"] = current_traceparent()
        return {"thing": thing}

    @app.get("/v1/broken")
    async def broken() -> dict[str, str]:
        raise RuntimeError("boom")

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        response = await client.get("/v1/things/x?personnummer=191212121212", headers={"traceparent": PARENT})
        assert response.status_code == 200
        assert (await client.get("/v1/broken")).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404
    by_name = {s.name: s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER}
    assert set(by_name) == {"GET /v1/things/{thing}", "GET /v1/broken", "GET"}
    server = by_name["GET /v1/things/{thing}"]
    assert dict(server.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/v1/things/x",
        "http.route": "/v1/things/{thing}",
        "http.response.status_code": 200,
    }  # no query string: it may hold anything a client sent
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"
    assert trace_id(seen["traceparent"]) == trace_id(PARENT)
    assert f"{server.context.span_id:016x}" == seen["traceparent"].split("-")[2]  # the handler runs inside it
    failed = by_name["GET /v1/broken"]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "500"
    unmatched = by_name["GET"]  # no route matched: named by the method alone, never by the raw path
    assert (unmatched.attributes or {})["http.response.status_code"] == 404
    assert unmatched.status.status_code is StatusCode.UNSET  # a 4xx is the client's, not the server's failure


@pytest.mark.usefixtures("restore_logging")
async def test_an_answer_of_a_middleware_outside_the_common_ones_is_a_server_span_too(
    spans: InMemorySpanExporter,
) -> None:
    app = _hosted()
    app.add_middleware(BearerGate, tokens={"platform": SecretStr("s3cret")}, path_prefix="/v1/", what="platform")

    @app.post("/v1/things")
    async def things() -> dict[str, str]:
        return {}

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert (await client.post("/v1/things", json={}, headers={"traceparent": PARENT})).status_code == 401
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert (server.attributes or {})["http.response.status_code"] == 401
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"


def test_continuing_another_trace_records_a_span_of_it_linked_to_the_current_one(spans: InMemorySpanExporter) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    with hop(PARENT, "consent request") as request:
        released = continue_trace(other, "consent release held")
    assert trace_id(released) == trace_id(other)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "consent release held"]
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == "2222222222222222"
    assert [f"{link.context.span_id:016x}" for link in span.links] == [request.split("-")[2]]


def test_without_telemetry_continuing_a_trace_is_a_child_id() -> None:
    assert trace_id(continue_trace(PARENT, "x")) == trace_id(PARENT)


@pytest.mark.usefixtures("restore_logging")
async def test_a_request_to_a_hosted_service_is_one_server_span(spans: InMemorySpanExporter) -> None:
    app = _hosted()
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert (await client.get("/healthz", headers={"traceparent": PARENT})).status_code == 200
    # FastAPI's operation spans (dependencies, endpoint) are off: they would triple the spans of every request.
    assert [(s.name, s.kind) for s in spans.get_finished_spans()] == [("GET /healthz", SpanKind.SERVER)]


def test_flushing_exports_what_the_batch_processor_holds(spans: InMemorySpanExporter) -> None:
    batched = InMemorySpanExporter()
    switch = telemetry._state["switch"]
    assert isinstance(switch, telemetry._Switch)
    switch.target = BatchSpanProcessor(batched, schedule_delay_millis=600_000)
    span, _ = start_hop(PARENT, "held back")
    end_hop(span)
    assert batched.get_finished_spans() == ()
    assert flush_telemetry()
    assert [s.name for s in batched.get_finished_spans()] == ["held back"]


def test_flushing_without_telemetry_does_nothing() -> None:
    assert not recording()
    assert flush_telemetry()


UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def test_a_hop_under_an_unsampled_parent_records_nothing_and_skips_the_instrumentations(
    spans: InMemorySpanExporter,
) -> None:
    with hop(UNSAMPLED, "quiet") as mine:
        assert not is_instrumentation_enabled()  # the asyncpg spans would be dropped anyway: not even made
        assert trace_id(current_traceparent()) == trace_id(UNSAMPLED)
    assert is_instrumentation_enabled()
    span, started = start_hop(UNSAMPLED, "quiet too")
    assert span is None
    assert not will_record(UNSAMPLED)
    assert will_record(PARENT)
    assert will_record(None)  # a root: the sampler decides
    for traceparent in (mine, started):
        assert trace_id(traceparent) == trace_id(UNSAMPLED)
        assert traceparent.endswith("-00")  # what it emits stays unsampled downstream
    assert spans.get_finished_spans() == ()
    with hop(PARENT, "sampled"):
        assert is_instrumentation_enabled()
    assert [s.name for s in spans.get_finished_spans()] == ["sampled"]


@pytest.mark.usefixtures("restore_logging")
async def test_a_request_under_an_unsampled_parent_records_nothing_and_skips_the_instrumentations(
    spans: InMemorySpanExporter,
) -> None:
    app = _hosted()
    seen: dict[str, Any] = {}

    @app.get("/v1/quiet")
    async def quiet() -> dict[str, str]:
        seen["instrumented"] = is_instrumentation_enabled()
        seen["traceparent"] = current_traceparent()
        return {}

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert (await client.get("/v1/quiet", headers={"traceparent": UNSAMPLED})).status_code == 200
        assert seen == {"instrumented": False, "traceparent": seen["traceparent"]}
        assert trace_id(seen["traceparent"]) == trace_id(UNSAMPLED)
        assert (await client.get("/v1/quiet", headers={"traceparent": PARENT})).status_code == 200
        assert seen["instrumented"] is True
    assert [s.name for s in spans.get_finished_spans()] == ["GET /v1/quiet"]
