"""Intake under faults: the broker away while certificates arrive, and intake killed between commit and publish.

Each test states what it checked: certificates accepted (in), events on the topic (out), lost, duplicated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local.infra import KafkaNode
from deploy.simulators.platform.generator import CertificateFactory
from schemas.envelope import decode
from schemas.events import CertificateIssued
from schemas.topics import INTAKE_CERTIFICATES
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from tests.harness import ServiceProcess, count_rows, eventually, free_port, in_process, outbox_empty, read_topic
from tests.integration.intake.conftest import PLATFORM_AUTH, connect_simulated_units

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def report(test: str, sent: int, ids_out: list[str]) -> None:
    counts = Counter(ids_out)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    lost = sent - len(counts)
    print(f"\n[{test}] in={sent} out={len(ids_out)} distinct={len(counts)} lost={lost} duplicated={duplicated}")


async def issued_ids(settings: IntakeSettings) -> list[str]:
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(INTAKE_CERTIFICATES.name))
    ids = []
    for record in records:
        data = decode(record.value).data
        assert isinstance(data, CertificateIssued)
        ids.append(data.certificate.id)
    return ids


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaNode]:
    """A broker of this test's own, so stopping it disturbs no other test."""
    node = KafkaNode(tmp_path / "kafka", port=free_port(), controller_port=free_port(), heap="256m")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def intake_on_private_kafka(
    private_kafka: KafkaNode, intake_settings: IntakeSettings
) -> AsyncIterator[tuple[httpx.AsyncClient, IntakeSettings]]:
    settings = intake_settings.model_copy(update={"kafka_bootstrap_servers": private_kafka.bootstrap})
    async with in_process(create_app(settings), "http://i") as client:
        await connect_simulated_units(settings)
        yield client, settings


async def test_kafka_stopped_while_accepting_then_everything_published_once(
    private_kafka: KafkaNode,
    intake_on_private_kafka: tuple[httpx.AsyncClient, IntakeSettings],
    factory: CertificateFactory,
) -> None:
    client, settings = intake_on_private_kafka
    before = [factory.certificate() for _ in range(10)]
    during = [factory.certificate() for _ in range(50)]
    for cert in before:
        assert (await client.post("/v1/certificates", json=cert, headers=PLATFORM_AUTH)).status_code == 201
    await eventually(lambda: outbox_empty(settings.database_url, settings.db_schema), what="first batch published")

    await asyncio.to_thread(private_kafka.stop)
    for cert in during:
        response = await client.post("/v1/certificates", json=cert, headers=PLATFORM_AUTH)
        assert response.status_code == 201, response.text  # accepted: the outbox holds it
    assert await count_rows(settings.database_url, settings.db_schema, "outbox") == len(during)
    readiness = (await client.get("/readyz")).json()
    assert readiness["ready"] is True  # still accepting while the broker is away

    await asyncio.to_thread(private_kafka.start)
    await eventually(
        lambda: outbox_empty(settings.database_url, settings.db_schema), timeout=90, what="backlog published"
    )
    ids = await issued_ids(settings)
    report("kafka-stopped", len(before) + len(during), ids)
    assert sorted(ids) == sorted(c["id"] for c in before + during)  # none lost, none duplicated


def _intake(settings: IntakeSettings, port: int, *, relay: bool) -> ServiceProcess:
    """`minaintyg-intake` on `port` (the same port across restarts), with the outbox relay on or off."""
    env = {
        "INTAKE_DB_SCHEMA": settings.db_schema,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "INTAKE_RELAY_ENABLED": "true" if relay else "false",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "LOG_LEVEL": "WARNING",
    }
    return ServiceProcess("minaintyg-intake", env, port_env="INTAKE_PORT", port=port)


async def test_intake_killed_between_commit_and_publish_publishes_exactly_once_after_restart(
    intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    port = free_port()
    certs = [factory.certificate() for _ in range(30)]
    # The relay is off, so every accepted certificate is committed and not yet published when the kill comes.
    process = _intake(intake_settings, port, relay=False)
    try:
        await process.start()
        await connect_simulated_units(intake_settings)
        async with httpx.AsyncClient(base_url=process.url, headers=PLATFORM_AUTH, timeout=10) as client:
            for cert in certs:
                assert (await client.post("/v1/certificates", json=cert)).status_code == 201
    finally:
        process.kill()
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "outbox") == len(certs)

    restarted = _intake(intake_settings, port, relay=True)
    try:
        await restarted.start()
        await eventually(
            lambda: outbox_empty(intake_settings.database_url, intake_settings.db_schema),
            timeout=60,
            what="relay to publish",
        )
        ids = await issued_ids(intake_settings)
    finally:
        restarted.stop(timeout=30)
    report("sigkill-before-publish", len(certs), ids)
    assert sorted(ids) == sorted(c["id"] for c in certs)


async def test_sigkill_at_random_points_under_load_loses_nothing(
    intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    """Intake killed 5 times while certificates stream in; every certificate that got 201 reaches the topic.

    A kill after publishing but before the outbox rows are deleted may publish an event twice (the consumers
    deduplicate on event id); the check is therefore: nothing accepted is lost, and every duplicate on the topic
    carries the same event id (one event, delivered twice), never two different events for one certificate.
    """
    port = free_port()
    accepted: list[str] = []
    pending = [factory.certificate() for _ in range(300)]
    await connect_units_after_first_start(intake_settings, port)
    process = _intake(intake_settings, port, relay=True)
    for _round in range(5):
        try:
            await process.start()
            async with httpx.AsyncClient(base_url=process.url, headers=PLATFORM_AUTH, timeout=10) as client:
                for cert in pending[:60]:
                    response = await client.post("/v1/certificates", json=cert)
                    assert response.status_code in (200, 201), response.text
                    accepted.append(cert["id"])
            pending = pending[60:]
        finally:
            process.kill()
    final = _intake(intake_settings, port, relay=True)
    try:
        await final.start()
        await eventually(
            lambda: outbox_empty(intake_settings.database_url, intake_settings.db_schema),
            timeout=60,
            what="relay to drain",
        )
        records = await read_topic(
            intake_settings.kafka_bootstrap_servers, intake_settings.topic(INTAKE_CERTIFICATES.name)
        )
    finally:
        final.stop(timeout=30)
    events = [decode(r.value) for r in records]
    ids = [e.data.certificate.id for e in events if isinstance(e.data, CertificateIssued)]
    report("sigkill-under-load", len(accepted), ids)
    assert set(ids) == set(accepted)
    event_ids_per_certificate: dict[str, set[str]] = {}
    for e in events:
        assert isinstance(e.data, CertificateIssued)
        event_ids_per_certificate.setdefault(e.data.certificate.id, set()).add(str(e.id))
    assert all(len(v) == 1 for v in event_ids_per_certificate.values())


async def connect_units_after_first_start(settings: IntakeSettings, port: int) -> None:
    process = _intake(settings, port, relay=False)
    try:
        await process.start()
        await connect_simulated_units(settings)
    finally:
        process.stop(timeout=30)
