"""The consumer commits a batch's offsets while it applies the next, and never before the batch's transaction."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import Envelope, encode, new_envelope
from schemas.events import CitizenDataWithdrawn
from schemas.topics import TopicSpec, dead_letter
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Connection
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from tests.harness import connect, eventually

pytestmark = pytest.mark.integration

TOPIC = TopicSpec("test.pipelined.v1", "citizen_ref")
EVENTS = 120


async def test_no_offset_is_committed_before_the_transaction_of_its_events(
    settings: ServiceSettings, pool: asyncpg.Pool, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(update={"kafka_partitions": 1})  # offsets 0..N-1 are events 0..N-1
    topic = settings.topic(TOPIC.name)
    await ensure_topics(settings, [TOPIC, dead_letter(TOPIC)])
    producer = make_producer(settings, client_id="test")
    await producer.start()
    try:
        for n in range(EVENTS):
            envelope = new_envelope(
                CitizenDataWithdrawn(citizen_ref=f"{n:064x}", at=datetime.now(UTC)),
                source="test", time=datetime.now(UTC), correlation_id=f"c{n}",
            )  # fmt: skip
            await producer.send(topic, value=encode(envelope), key=b"one")
        await producer.flush()
    finally:
        await producer.stop()

    committed: list[int] = []
    visible_at_commit: list[int] = []
    async with connect(settings.database_url, schema) as checker:
        real_commit = AIOKafkaConsumer.commit

        async def checked_commit(self: AIOKafkaConsumer, offsets: Any = None) -> None:
            # What another connection sees at the moment of the commit: the effects of every event before it.
            visible_at_commit.append(await checker.fetchval("SELECT count(*) FROM effects"))
            committed.append(offsets[TopicPartition(topic, 0)])
            await real_commit(self, offsets)

        monkeypatch.setattr(AIOKafkaConsumer, "commit", checked_commit)

        async def slow_effect(conn: Connection, envelope: Envelope) -> None:
            assert isinstance(envelope.data, CitizenDataWithdrawn)
            await asyncio.sleep(0.002)  # long enough for a commit to be in flight while the next batch is applied
            await conn.execute("INSERT INTO effects VALUES ($1, $2)", envelope.id, envelope.data.citizen_ref)

        consumer = IdempotentConsumer(
            settings, pool, name="pipelined", topics=[TOPIC], handler=slow_effect, max_records=7
        )
        task = asyncio.create_task(consumer.run())
        try:
            await eventually(lambda: _last_is(committed, EVENTS), timeout=60, what="every offset committed")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert len(committed) > 3  # several batches, so commits did overlap the next batch
    assert committed == sorted(committed)
    for offset, visible in zip(committed, visible_at_commit, strict=True):
        assert visible >= offset, f"offset {offset} committed while only {visible} effects were committed"
    assert await group_offset(settings, topic, "pipelined") == EVENTS


async def _last_is(committed: list[int], n: int) -> bool:
    return n in committed


async def group_offset(settings: ServiceSettings, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=settings.topic_prefix + group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await consumer.stop()
