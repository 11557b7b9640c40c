"""The kit consumer against the real broker and database when consumption goes wrong: a consumer whose fetch hangs
(partitions with lag, no progress) is stopped by its watchdog and restarted by the supervisor, and a rebalance that
revokes partitions while a batch is in flight neither crashes the task nor loses or duplicates an effect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

import services.kit.consumer as consumer_module
from schemas.envelope import Envelope, encode, new_envelope
from schemas.events import CitizenDataWithdrawn
from schemas.topics import TopicSpec, dead_letter
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Connection, create_pool, migrate
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from services.kit.tasks import supervise
from tests.harness import eventually

pytestmark = pytest.mark.integration

TOPIC = TopicSpec("test.watchdog.v1", "citizen_ref")


@pytest.fixture
async def pool(settings: ServiceSettings, schema: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
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
    return new_envelope(
        CitizenDataWithdrawn(citizen_ref=f"{n:064x}", at=datetime.now(UTC)),
        source="test",
        time=datetime.now(UTC),
        correlation_id=f"c{n}",
    )


async def publish(producer: AIOKafkaProducer, settings: ServiceSettings, numbers: range) -> None:
    """Events with keys of their own, so they spread over every partition."""
    futures = [
        await producer.send(settings.topic(TOPIC.name), value=encode(event(n)), key=f"{n:064x}".encode())
        for n in numbers
    ]
    await asyncio.gather(*futures)


async def record_effect(conn: Connection, envelope: Envelope) -> None:
    assert isinstance(envelope.data, CitizenDataWithdrawn)
    await conn.execute("INSERT INTO effects VALUES ($1, $2)", envelope.id, envelope.data.citizen_ref)


async def effect_counts(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM effects")
    assert row is not None
    return int(row["n"]), int(row["d"])


async def _has(pool: asyncpg.Pool, n: int) -> bool:
    return (await effect_counts(pool))[0] >= n


@contextlib.asynccontextmanager
async def started(work: Any) -> AsyncIterator[asyncio.Task[None]]:
    task: asyncio.Task[None] = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_consumer_whose_fetch_hangs_is_restarted_by_the_supervisor_and_catches_up(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first Kafka consumer this test's IdempotentConsumer makes stops fetching once it has its partitions
    (they are paused, as a fetcher stuck on a broker would leave them): lag, no progress. The watchdog ends the
    run after the configured stall time; the supervisor starts a new one, which catches up."""
    made: list[AIOKafkaConsumer] = []

    class HangsFirstTime(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka is untyped
        async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
            if self is made[0] and self.assignment():
                self.pause(*self.assignment())
            return await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)

    def make(*args: Any, **kwargs: Any) -> AIOKafkaConsumer:
        made.append(HangsFirstTime(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", make)
    stalled = settings.model_copy(update={"consumer_stall_seconds": 3.0})
    consumer = IdempotentConsumer(stalled, pool, name="stalls", topics=[TOPIC], handler=record_effect)
    await publish(producer, settings, range(40))
    with structlog.testing.capture_logs() as logs:
        async with started(supervise("stalls", consumer.run)):
            await eventually(lambda: _has(pool, 40), timeout=60, what="40 effects after the restart")
            await publish(producer, settings, range(40, 60))
            await eventually(lambda: _has(pool, 60), timeout=30, what="60 effects")
    assert len(made) >= 2, "the stalled consumer was replaced"
    assert await effect_counts(pool) == (60, 60)
    stalls = [e for e in logs if e["event"] == "consumer.stalled"]
    assert stalls, [e["event"] for e in logs]
    assert stalls[0]["consumer"] == "stalls"
    assert stalls[0]["lag"] > 0
    assert stalls[0]["reason"]
    assert stalls[0]["stalled_seconds"] >= 3.0
    print(f"\n[watchdog] consumers made={len(made)} stall={stalls[0]}")


async def test_an_idle_consumer_without_lag_is_not_restarted(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    quick = settings.model_copy(update={"consumer_stall_seconds": 1.0})
    consumer = IdempotentConsumer(quick, pool, name="idle", topics=[TOPIC], handler=record_effect)
    await publish(producer, settings, range(5))
    with structlog.testing.capture_logs() as logs:
        async with started(consumer.run()) as task:
            await eventually(lambda: _has(pool, 5), timeout=30, what="5 effects")
            await asyncio.sleep(4)  # caught up and idle for four stall periods
            assert not task.done(), task
    assert not [e for e in logs if e["event"] == "consumer.stalled"]


async def test_a_rebalance_while_a_batch_is_in_flight_neither_crashes_nor_loses_nor_duplicates(
    settings: ServiceSettings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """The first consumer's handler holds its first batch until a second member has joined the group and taken
    partitions from it; its commit then names partitions it no longer has. Its task must live on, and every event
    have its effect exactly once."""
    await publish(producer, settings, range(120))
    release = asyncio.Event()
    held = asyncio.Event()

    async def slow(conn: Connection, envelope: Envelope) -> None:
        held.set()
        await release.wait()
        await record_effect(conn, envelope)

    first = IdempotentConsumer(settings, pool, name="shared", topics=[TOPIC], handler=slow, group_id="rebalance")
    second = IdempotentConsumer(
        settings, pool, name="shared", topics=[TOPIC], handler=record_effect, group_id="rebalance"
    )
    with structlog.testing.capture_logs() as logs:
        async with started(first.run()) as one:
            await asyncio.wait_for(held.wait(), 30)
            async with started(second.run()) as two:
                await eventually(lambda: _assigned(second), timeout=40, what="the second member's partitions")
                release.set()
                await publish(producer, settings, range(120, 180))
                await eventually(lambda: _has(pool, 180), timeout=40, what="180 effects")
                await asyncio.sleep(2)  # the in-flight commit and the next loop of the first member
                assert not one.done(), one
                assert not two.done(), two
    assert await effect_counts(pool) == (180, 180)
    failures = [e for e in logs if e["event"] in ("consumer.commit.failed", "task.failed")]
    assert not failures, failures
    dropped = [e for e in logs if e["event"] == "consumer.commit.revoked"]
    assert dropped, "the in-flight batch's commit named revoked partitions (the case under test)"
    print(f"\n[rebalance] effects=180 distinct=180 revoked-commit events={len(dropped)}")


async def _assigned(consumer: IdempotentConsumer) -> bool:
    return consumer.assigned
