"""The kit's idempotent consumer against the real broker and database: once per event, replays, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.envelope import Envelope, encode, new_envelope
from schemas.events import CitizenDataWithdrawn
from schemas.topics import TopicSpec, dead_letter
from services.kit.consumer import HandlerError, IdempotentConsumer, RetryPolicy
from services.kit.db import Connection, create_pool, migrate
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from tests.harness import eventually, read_topic

pytestmark = pytest.mark.integration

TOPIC = TopicSpec("test.events.v1", "citizen_ref")


@pytest.fixture
async def pool(settings: ServiceSettings, schema: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """The kit conftest's tables, and this module's topic with its dead-letter topic."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "test_0001_effects.sql").write_text(
        "CREATE TABLE effects (event_id uuid NOT NULL, citizen_ref text NOT NULL);"
    )
    await migrate(settings.database_url, schema, migrations)
    pool = await create_pool(settings.database_url, schema, application="test")
    await ensure_topics(settings, [TOPIC, dead_letter(TOPIC)])
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings: ServiceSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(settings, client_id="test")
    await producer.start()
    yield producer
    await producer.stop()


def event(n: int) -> Envelope:
    ref = f"{n:064x}"
    return new_envelope(
        CitizenDataWithdrawn(citizen_ref=ref, at=datetime.now(UTC)),
        source="test",
        time=datetime.now(UTC),
        correlation_id=f"c{n}",
    )


async def send(producer: AIOKafkaProducer, settings: ServiceSettings, value: bytes, key: bytes = b"k") -> None:
    await (await producer.send(settings.topic(TOPIC.name), value=value, key=key))


async def record_effect(conn: Connection, envelope: Envelope) -> None:
    assert isinstance(envelope.data, CitizenDataWithdrawn)
    await conn.execute("INSERT INTO effects VALUES ($1, $2)", envelope.id, envelope.data.citizen_ref)


@contextlib.asynccontextmanager
async def running(consumer: IdempotentConsumer) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def effects(pool: asyncpg.Pool) -> int:
    n: int = await pool.fetchval("SELECT count(*) FROM effects")
    return n


async def test_each_event_has_its_effect_once_even_when_replayed_from_offset_zero(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    events = [event(i) for i in range(20)]
    for e in events:
        await send(producer, settings, encode(e))
    for e in events[:5]:  # the same events delivered twice (as after a relay crash)
        await send(producer, settings, encode(e))

    consumer = IdempotentConsumer(settings, pool, name="effects", topics=[TOPIC], handler=record_effect)
    async with running(consumer):
        await eventually(lambda: _equals(effects(pool), 20), what="20 effects")

    # A new consumer group with the same name reads from offset 0: every event is recognised.
    replay = IdempotentConsumer(
        settings, pool, name="effects", topics=[TOPIC], handler=record_effect, group_id="effects-replay"
    )
    async with running(replay):
        await eventually(lambda: _tracked(pool, 20), what="replay to finish")
        await eventually(lambda: replay_caught_up(settings, "effects-replay"), what="replay group to commit")
    assert await effects(pool) == 20
    distinct: int = await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects")
    print(f"\n[consumer-replay] in=25 (20 distinct) effects={await effects(pool)} distinct={distinct}")
    assert distinct == 20


async def test_poison_and_failing_events_go_to_the_dead_letter_topic_and_consumption_goes_on(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    doomed, refused = event(1000), event(1001)
    attempts: dict[str, int] = {}

    async def handler(conn: Connection, envelope: Envelope) -> None:
        attempts[str(envelope.id)] = attempts.get(str(envelope.id), 0) + 1
        if envelope.id == doomed.id:
            raise ValueError("always fails")
        if envelope.id == refused.id:
            raise HandlerError("can never be processed")
        await record_effect(conn, envelope)

    await send(producer, settings, b"not json at all {")
    await send(producer, settings, b'{"type": "certificate.issued", "dataschema": "urn:x:v1", "data": {}}')
    await send(producer, settings, encode(doomed))
    await send(producer, settings, encode(refused))
    good = [event(i) for i in range(5)]
    for e in good:
        await send(producer, settings, encode(e))

    consumer = IdempotentConsumer(
        settings, pool, name="dlq-test", topics=[TOPIC], handler=handler,
        retry=RetryPolicy(max_attempts=3, first_backoff=0.01),
    )  # fmt: skip
    async with running(consumer):
        await eventually(lambda: _equals(effects(pool), 5), what="the good events after the bad ones")

    dead = await read_topic(settings.kafka_bootstrap_servers, settings.topic(dead_letter(TOPIC).name))
    assert len(dead) == 4
    errors = [dict(r.headers)["dlq.error"].decode() for r in dead]
    assert errors[0].startswith("InvalidEvent: not JSON")
    assert errors[1].startswith("InvalidEvent: invalid certificate.issued")
    assert errors[2] == "ValueError: always fails"
    assert errors[3] == "HandlerError: can never be processed"
    assert dead[0].value == b"not json at all {"  # the original bytes
    assert dict(dead[2].headers)["dlq.attempts"] == b"3"
    # Bounded: the per-record attempts, plus one run inside a batch transaction (rolled back) when the fetch
    # brought it together with other records.
    assert attempts[str(doomed.id)] in (3, 3 + 1)
    assert attempts[str(refused.id)] in (1, 1 + 1)
    assert dict(dead[2].headers)["dlq.source.topic"] == settings.topic(TOPIC.name).encode()
    print(f"\n[consumer-dlq] in=9 effects=5 dead_lettered={len(dead)} lost=0")


async def test_a_transient_handler_failure_is_retried_and_has_its_effect_once(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    flaky = event(7)
    failures = {"left": 2}

    async def handler(conn: Connection, envelope: Envelope) -> None:
        await record_effect(conn, envelope)  # rolled back with the tracking row when the attempt fails
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("transient")

    await send(producer, settings, encode(flaky))
    consumer = IdempotentConsumer(
        settings, pool, name="flaky", topics=[TOPIC], handler=handler, retry=RetryPolicy(first_backoff=0.01)
    )
    async with running(consumer):
        await eventually(lambda: _equals(effects(pool), 1), what="the effect")
    assert failures["left"] == 0
    assert await effects(pool) == 1


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _tracked(pool: asyncpg.Pool, expected: int) -> bool:
    n: int = await pool.fetchval("SELECT count(*) FROM processed_events")
    return n == expected


async def replay_caught_up(settings: ServiceSettings, group: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.topic_prefix + group)
        return bool(sum(o.offset for o in offsets.values()) == 25)
    finally:
        await admin.close()
