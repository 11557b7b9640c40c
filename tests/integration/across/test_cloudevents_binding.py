"""Our events on the real broker are CloudEvents by the Kafka binding (structured mode): the CloudEvents reference SDK
reads what intake's and consent's relays published; and an event carrying `tracestate` and other extensions is
processed like any other, not dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import ConsumerRecord
from asgi_lifespan import LifespanManager
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import CONTENT_TYPE, decode, encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased
from schemas.topics import CONSENT_RELEASED, INTAKE_CERTIFICATES
from services.consent.app import create_app as create_consent_app
from services.consent.settings import ConsentSettings
from services.intake.settings import IntakeSettings
from services.kit.citizen import citizen_ref
from services.kit.kafka import make_producer
from tests.harness import eventually, read_topic
from tests.integration.intake.conftest import PLATFORM_AUTH

pytestmark = pytest.mark.integration
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


@pytest.fixture
async def consent(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Consent on intake's topics, in a schema of its own."""
    settings = ConsentSettings(
        db_schema=f"{intake_settings.db_schema}_consent",
        topic_prefix=intake_settings.topic_prefix,
        environment="test",
        log_json=False,
    )
    app = create_consent_app(settings)
    try:
        async with (
            LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://consent") as client,
        ):
            yield client
    finally:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
        finally:
            await conn.close()


async def test_the_cloudevents_sdk_reads_what_our_relays_published_and_extensions_pass(
    intake_client: httpx.AsyncClient,
    consent: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    factory: CertificateFactory,
) -> None:
    person = next(p for p in factory.persons if not p.test_patient)
    ref = citizen_ref(person.personnummer, intake_settings.citizen_ref_key.get_secret_value())
    given = await consent.post(
        f"/internal/v1/citizens/{ref}/consent",
        json={"text_version": "2025-1"},
        headers={"Authorization": "Bearer dev-portal-to-consent"},
    )
    assert given.status_code == 200, given.text

    # One certificate the way the platform sends it (intake's relay publishes it, consent's gate releases it) ...
    posted = factory.certificate("LISJP", person=person)
    accepted = await intake_client.post("/v1/certificates", json=posted, headers=PLATFORM_AUTH)
    assert accepted.status_code == 201, accepted.text
    # ... and one published by another producer, with tracestate and other CloudEvents extensions.
    extended = CERTIFICATE_ADAPTER.validate_python(factory.certificate("LISJP", person=person))
    now = datetime.now(UTC)
    envelope = new_envelope(
        CertificateIssued(citizen_ref=ref, certificate=extended, test_patient=False, received_at=now),
        source="elsewhere",
        time=now,
        correlation_id="corr-extended",
        subject=extended.id,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    document = orjson.loads(encode(envelope)) | {"tracestate": TRACESTATE, "comexampleflag": True, "sequence": 7}
    producer = make_producer(intake_settings, client_id="test-extended")
    await producer.start()
    try:
        await producer.send_and_wait(
            intake_settings.topic(INTAKE_CERTIFICATES.name),
            value=orjson.dumps(document),
            key=ref.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
    finally:
        await producer.stop()

    released_topic = intake_settings.topic(CONSENT_RELEASED.name)

    async def both_released() -> list[ConsumerRecord[bytes, bytes]] | None:
        records = await read_topic(intake_settings.kafka_bootstrap_servers, released_topic)
        return records if len(records) == 2 else None

    released: list[ConsumerRecord[bytes, bytes]] = await eventually(both_released, timeout=60, what="both releases")
    released_ids = set()
    for record in released:
        data = decode(record.value or b"").data
        assert isinstance(data, CertificateReleased)
        released_ids.add(data.certificate.id)
    assert released_ids == {posted["id"], extended.id}
    # Nothing was dead-lettered (the gate created its dead-letter topic at start-up).
    dead = intake_settings.topic(INTAKE_CERTIFICATES.name) + ".dlq"
    assert await read_topic(intake_settings.kafka_bootstrap_servers, dead) == []

    # The reference SDK reads every message of both topics: intake's relay's, consent's relay's (the gate's bytes
    # are built without the models) and the extended one.
    issued = await read_topic(intake_settings.kafka_bootstrap_servers, intake_settings.topic(INTAKE_CERTIFICATES.name))
    assert len(issued) == 2
    for record in [*issued, *released]:
        headers = {name: value for name, value in record.headers}
        assert headers["content-type"] == CONTENT_TYPE.encode()
        assert not [name for name in headers if name.startswith("ce_")]
        value = record.value or b""
        event = from_kafka(KafkaMessage(headers=headers, key=record.key, value=value), JSONFormat())
        ours = decode(value)
        assert event.get_id() == str(ours.id)
        assert event.get_type() == ours.type
        assert event.get_source() == ours.source
        assert event.get_time() == ours.time
        assert event.get_subject() == ours.subject
        assert event.get_dataschema() == ours.dataschema
        assert event.get_extension("correlationid") == ours.correlationid
        assert event.get_extension("traceparent") == ours.traceparent
        assert event.get_data() == orjson.loads(value)["data"]
    (theirs,) = [r for r in issued if decode(r.value or b"").source == "elsewhere"]
    event = from_kafka(
        KafkaMessage(headers=dict(theirs.headers), key=theirs.key, value=theirs.value or b""), JSONFormat()
    )
    assert event.get_extension("tracestate") == TRACESTATE
    assert event.get_extension("sequence") == 7
