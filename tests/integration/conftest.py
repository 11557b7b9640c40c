"""Fixtures for tests against the real Kafka broker and PostgreSQL (`make infra-up` starts them).

Every test gets its own database schema and its own topic prefix, so no test sees another's rows or events.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager

from deploy.simulators.platform.generator import CertificateFactory, SimCareUnit
from schemas.certificate import County
from services.intake import repo as intake_repo
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kit.settings import ServiceSettings

PLATFORM_AUTH = {"Authorization": "Bearer dev-platform-secret"}


@pytest.fixture(scope="session")
def base_settings() -> ServiceSettings:
    settings = ServiceSettings()
    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    with socket.socket() as s:
        if s.connect_ex((host, int(port))) != 0:
            pytest.fail(f"Kafka is not reachable at {settings.kafka_bootstrap_servers}: run `make infra-up`")
    return settings


@pytest.fixture
async def unique(base_settings: ServiceSettings) -> AsyncIterator[str]:
    """An id for this test's topic prefix, schema and groups; its topics are deleted after the test."""
    value = uuid.uuid4().hex[:10]
    yield value
    await delete_topics_of(base_settings.kafka_bootstrap_servers, value)


async def delete_topics_of(bootstrap: str, unique: str) -> None:
    """Delete every topic whose name carries `unique` (a test's prefix), so a whole run does not pile up thousands
    of partitions on the one local broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if unique in t]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=60_000)
    finally:
        await admin.close()


@pytest.fixture
async def schema(base_settings: ServiceSettings, unique: str) -> AsyncIterator[str]:
    """A fresh database schema, dropped after the test."""
    name = f"t_{unique}"
    yield name
    conn = await asyncpg.connect(base_settings.database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def intake_settings(base_settings: ServiceSettings, schema: str, unique: str) -> IntakeSettings:
    return IntakeSettings(db_schema=schema, topic_prefix=f"t{unique}.", environment="test", log_json=False)


@pytest.fixture
async def intake_client(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Intake running in-process (lifespan and relay included), with the simulator's units connected."""
    app = create_app(intake_settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        await connect_simulated_units(intake_settings)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield client


async def connect_simulated_units(settings: IntakeSettings) -> None:
    from deploy.simulators.platform.generator import CARE_UNITS

    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
    try:
        await intake_repo.connect_care_units(conn, [(u.hsa_id, u.name) for u in CARE_UNITS])
    finally:
        await conn.close()


UNCONNECTED_UNIT = SimCareUnit(
    "SE2321000016-9ZZZ",
    "Vårdcentral Ej Ansluten",
    "Testgatan 1",
    "111 11",
    "Stockholm",
    "08-000 000 00",
    County.STOCKHOLM,
    "SE2321000016-0001",
    "Region Stockholm",
)


@pytest.fixture
def factory(unique: str) -> CertificateFactory:
    return CertificateFactory(seed=int(unique, 16) % 2**31)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll `check` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 10.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` from offset 0 to its current end (no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await eventually(
            lambda: _partitions(consumer, topic), timeout=timeout, what=f"topic {topic} to exist"
        )
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        ends = await consumer.end_offsets(assignment)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < ends[tp] for tp in assignment]):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout} s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int] | None:
    await consumer._client.force_metadata_update()
    partitions: set[int] | None = consumer.partitions_for_topic(topic)
    return partitions


async def outbox_empty(settings: ServiceSettings, schema: str) -> bool:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
    try:
        remaining: int = await conn.fetchval("SELECT count(*) FROM outbox")
        return remaining == 0
    finally:
        await conn.close()


async def count_rows(settings: ServiceSettings, schema: str, table: str) -> int:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
    try:
        n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - table names are test constants
        return n
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
