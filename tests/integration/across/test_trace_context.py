"""One trace from the national platform's request to the certificate's release: every Kafka hop carries it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.envelope import Envelope, decode
from schemas.topics import CONSENT_RELEASED, INTAKE_CERTIFICATES
from services.consent.app import create_app as create_consent_app
from services.consent.settings import ConsentSettings
from services.intake.settings import IntakeSettings
from services.kit.tracing import trace_id
from tests.harness import count_rows, drop_schema, eventually, in_process, read_topic
from tests.integration.intake.conftest import PLATFORM_AUTH

pytestmark = pytest.mark.integration
PLATFORM_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
async def consent(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Consent on intake's topics, in a schema of its own."""
    settings = ConsentSettings(
        db_schema=consent_schema(intake_settings),
        topic_prefix=intake_settings.topic_prefix,
        environment="test",
        log_json=False,
    )
    try:
        async with in_process(create_consent_app(settings), "http://consent") as client:
            yield client
    finally:
        await drop_schema(settings.database_url, settings.db_schema)


def consent_schema(intake_settings: IntakeSettings) -> str:
    return f"{intake_settings.db_schema}_consent"


async def only_event(settings: IntakeSettings, topic: str) -> Envelope | None:
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(topic))
    return decode(records[0].value or b"") if len(records) == 1 else None


async def test_the_platforms_trace_reaches_the_release(
    intake_client: httpx.AsyncClient,
    consent: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    factory: CertificateFactory,
) -> None:
    body = factory.certificate("LISJP")
    accepted = await intake_client.post(
        "/v1/certificates", json=body, headers={**PLATFORM_AUTH, "traceparent": PLATFORM_TRACE}
    )
    assert accepted.status_code == 201, accepted.text

    issued = await eventually(lambda: only_event(intake_settings, INTAKE_CERTIFICATES.name), what="the intake event")
    assert issued.traceparent is not None
    assert trace_id(issued.traceparent) == trace_id(PLATFORM_TRACE)
    assert issued.traceparent != PLATFORM_TRACE  # intake's request is a span of its own

    # Held first (no consent yet), then released by the consent: the release still continues the platform's trace.
    await eventually(
        lambda: count_rows(intake_settings.database_url, consent_schema(intake_settings), "certificates"), what="held"
    )
    given = await consent.post(
        f"/internal/v1/citizens/{issued.data.citizen_ref}/consent",
        json={"text_version": "2025-1"},
        headers={"Authorization": "Bearer dev-portal-to-consent"},
    )
    assert given.status_code == 200, given.text
    released = await eventually(lambda: only_event(intake_settings, CONSENT_RELEASED.name), what="the release")
    assert trace_id(released.traceparent) == trace_id(PLATFORM_TRACE)
    assert released.traceparent not in (PLATFORM_TRACE, issued.traceparent)


async def test_a_request_without_trace_context_starts_a_trace(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    accepted = await intake_client.post("/v1/certificates", json=factory.certificate("LISJP"), headers=PLATFORM_AUTH)
    assert accepted.status_code == 201, accepted.text
    issued = await eventually(lambda: only_event(intake_settings, INTAKE_CERTIFICATES.name), what="the intake event")
    assert trace_id(issued.traceparent) is not None
