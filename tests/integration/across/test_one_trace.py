"""With telemetry recording, the national platform's request is ONE trace through intake, consent, the portal,
dispatch and statistics: every hop a recorded span whose parent is the hop before, database calls inside them, and
the outbox relay's publish linked to the span that wrote the event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from deploy.simulators.platform.generator import CertificateFactory
from services.consent.app import create_app as create_consent_app
from services.consent.settings import ConsentSettings
from services.dispatch.app import create_app as create_dispatch_app
from services.dispatch.settings import DispatchSettings
from services.intake.settings import IntakeSettings
from services.kit.citizen import citizen_ref
from services.kit.settings import ServiceSettings
from services.kit.telemetry import configure_telemetry, shutdown_telemetry
from services.portal.app import create_app as create_portal_app
from services.portal.settings import PortalSettings
from services.stats.app import create_app as create_stats_app
from services.stats.settings import StatsSettings
from tests.harness import eventually
from tests.integration.intake.conftest import PLATFORM_AUTH

pytestmark = pytest.mark.integration
PLATFORM_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PLATFORM_SPAN_ID = "00f067aa0ba902b7"
PLATFORM_TRACE = f"00-{PLATFORM_TRACE_ID}-{PLATFORM_SPAN_ID}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Telemetry recording into memory for this test (first in the test's fixtures: before any service starts)."""
    exporter = InMemorySpanExporter()
    assert configure_telemetry("test", ServiceSettings(), exporter=exporter) is not None
    try:
        yield exporter
    finally:
        shutdown_telemetry()


@pytest.fixture
async def consent(intake_settings: IntakeSettings, base_settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Consent, the portal, dispatch and statistics in this process, on intake's topics, each in its own schema; a
    client of consent's internal API."""
    prefix = intake_settings.topic_prefix
    schema = intake_settings.db_schema
    consent_app = create_consent_app(
        ConsentSettings(db_schema=f"{schema}_consent", topic_prefix=prefix, environment="test", log_json=False)
    )
    portal_app = create_portal_app(
        PortalSettings(
            db_schema=f"{schema}_portal",
            topic_prefix=prefix,
            environment="test",
            log_json=False,
            consent_url="http://consent",
        )
    )
    dispatch_app = create_dispatch_app(
        DispatchSettings(db_schema=f"{schema}_dispatch", topic_prefix=prefix, environment="test", log_json=False)
    )
    stats_app = create_stats_app(
        StatsSettings(db_schema=f"{schema}_stats", topic_prefix=prefix, environment="test", log_json=False)
    )
    try:
        async with (
            LifespanManager(consent_app, startup_timeout=60, shutdown_timeout=30) as manager,
            LifespanManager(portal_app, startup_timeout=60, shutdown_timeout=30),
            LifespanManager(dispatch_app, startup_timeout=60, shutdown_timeout=30),
            LifespanManager(stats_app, startup_timeout=60, shutdown_timeout=30),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://consent") as client,
        ):
            yield client
    finally:
        conn = await asyncpg.connect(base_settings.database_url)
        try:
            for suffix in ("consent", "portal", "dispatch", "stats"):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_{suffix}" CASCADE')
        finally:
            await conn.close()


def _hex(span_id: int) -> str:
    return f"{span_id:016x}"


def _parent_id(span: ReadableSpan) -> str | None:
    return _hex(span.parent.span_id) if span.parent is not None else None


def _descends(span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[str, ReadableSpan]) -> bool:
    """Whether `ancestor` is `span`'s parent, or its parent's, and so on."""
    assert ancestor.context is not None
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        parent = by_id.get(_hex(span.parent.span_id))
        if parent is None:
            return False
        span = parent
    return False


def _handled_by(found: list[ReadableSpan], consumer: str) -> list[ReadableSpan]:
    """The spans of `consumer`'s handling of one event each."""
    return [
        s
        for s in found
        if s.kind is SpanKind.CONSUMER
        and str((s.attributes or {}).get("messaging.consumer.group.name", "")).endswith(consumer)
        and "messaging.message.id" in (s.attributes or {})
    ]


def _in_trace(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == PLATFORM_TRACE_ID
    ]


async def test_the_platforms_request_is_one_trace_through_all_five_services(
    spans: InMemorySpanExporter,
    intake_client: httpx.AsyncClient,
    consent: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    factory: CertificateFactory,
) -> None:
    body = factory.certificate("LISJP")
    ref = citizen_ref(body["patient"]["personnummer"], intake_settings.citizen_ref_key.get_secret_value())
    # Consent first, so the certificate is released by the gate's handling of intake's event, in the same trace.
    given = await consent.post(
        f"/internal/v1/citizens/{ref}/consent",
        json={"text_version": "2025-1"},
        headers={"Authorization": "Bearer dev-portal-to-consent"},
    )
    assert given.status_code == 200, given.text

    accepted = await intake_client.post(
        "/v1/certificates", json=body, headers={**PLATFORM_AUTH, "traceparent": PLATFORM_TRACE}
    )
    assert accepted.status_code == 201, accepted.text

    async def reached_everyone() -> list[ReadableSpan] | None:
        found = _in_trace(spans)
        done = all(
            _handled_by(found, name) for name in ("consent-gate", "portal-read-model", "dispatch", "stats-ingest")
        )
        return found if done else None

    try:
        found = await eventually(reached_everyone, timeout=60, what="the trace to reach portal, dispatch and stats")
    except AssertionError as exc:
        seen = sorted(
            {(s.name, str((s.attributes or {}).get("messaging.consumer.group.name"))) for s in _in_trace(spans)}
        )
        raise AssertionError(f"{exc}; spans of the trace: {seen}; all: {len(spans.get_finished_spans())}") from None
    by_id = {_hex(s.context.span_id): s for s in found if s.context is not None}

    # The platform's request: intake's server span, a child of the platform's span.
    (request,) = [s for s in found if s.kind is SpanKind.SERVER and s.name == "POST /v1/certificates"]
    assert _parent_id(request) == PLATFORM_SPAN_ID

    # Consent's gate handles intake's event under the request (intake's endpoint span wrote it); the three readers
    # of the release as children of the gate's handling.
    (gate,) = _handled_by(found, "consent-gate")
    assert _descends(gate, request, by_id)
    for reader in ("portal-read-model", "dispatch", "stats-ingest"):
        (handled,) = _handled_by(found, reader)
        assert gate.context is not None
        assert _parent_id(handled) == _hex(gate.context.span_id), reader
        assert handled.attributes is not None
        assert str(handled.attributes["messaging.destination.name"]).endswith("consent.released.v1")

    # One trace: every span's parent is in it, except the request's (the platform's own span).
    for span in found:
        if span is not request:
            assert _parent_id(span) in by_id, span.name

    # Database calls are recorded inside the hops (the asyncpg instrumentation).
    database = [s for s in spans.get_finished_spans() if s.attributes and s.attributes.get("db.system")]
    assert any(s in found and s.kind is SpanKind.CLIENT for s in database)
    # The statement's text is recorded, never its parameters (personnummer, certificate documents).
    assert not [s.name for s in database if s.attributes and "db.statement.parameters" in s.attributes]
    # One span per request: FastAPI's operation spans are off.
    assert not [s.name for s in spans.get_finished_spans() if s.name.startswith("fastapi.")]

    # The relay's publish is a trace of its own, linked to the span that wrote the event into the outbox.
    publishes = [s for s in spans.get_finished_spans() if s.name == "outbox publish" and s.kind is SpanKind.PRODUCER]
    linked = [
        by_id[_hex(link.context.span_id)] for s in publishes for link in s.links if _hex(link.context.span_id) in by_id
    ]
    assert any(_descends(span, request, by_id) for span in linked)  # intake's event
    assert gate in linked  # consent's release
