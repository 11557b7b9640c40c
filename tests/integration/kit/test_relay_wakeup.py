"""The outbox relay never sleeps a poll interval on rows whose commit was announced while it was publishing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.envelope import new_envelope
from schemas.events import CitizenDataWithdrawn
from schemas.topics import TopicSpec
from services.kit.kafka import ensure_topics, make_producer
from services.kit.outbox import OutboxRelay, add_to_outbox
from services.kit.settings import ServiceSettings
from tests.harness import eventually, read_topic

pytestmark = pytest.mark.integration

TOPIC = TopicSpec("test.relayed.v1", "citizen_ref")


async def add_event(pool: asyncpg.Pool, topic: str, n: int) -> None:
    envelope = new_envelope(
        CitizenDataWithdrawn(citizen_ref=f"{n:064x}", at=datetime.now(UTC)),
        source="test",
        time=datetime.now(UTC),
        correlation_id=f"c{n}",
    )
    async with pool.acquire() as conn, conn.transaction():
        await add_to_outbox(conn, topic, f"{n:064x}", envelope)


async def test_a_commit_announced_during_a_publish_is_published_without_waiting_for_the_poll(
    settings: ServiceSettings, pool: asyncpg.Pool
) -> None:
    topic = settings.topic(TOPIC.name)
    await ensure_topics(settings, [TOPIC])
    relay = OutboxRelay(
        pool, lambda: make_producer(settings, client_id="test-relay"), lock_name=f"{settings.topic_prefix}outbox",
        poll_interval=60.0,
    )  # fmt: skip
    publish_batch = relay.publish_batch
    rounds = 0

    async def publish_with_a_commit_landing_meanwhile(producer: AIOKafkaProducer) -> int:
        # The second event commits (and is announced) after this round read its batch: only the next round
        # can publish it, and the relay must go round at once rather than sleep its 60 s poll interval.
        nonlocal rounds
        rounds += 1
        published = await publish_batch(producer)
        if rounds == 1:
            await add_event(pool, topic, 2)
            relay.notify()
        return published

    relay.publish_batch = publish_with_a_commit_landing_meanwhile  # type: ignore[method-assign]
    await add_event(pool, topic, 1)
    started = time.monotonic()
    task = asyncio.create_task(relay.run())
    try:
        records = await eventually(lambda: _at_least(settings, topic, 2), timeout=20, what="both events on the topic")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(records) == 2
    assert time.monotonic() - started < 20  # far below the 60 s poll interval


async def _at_least(settings: ServiceSettings, topic: str, n: int) -> list[object] | None:
    records = await read_topic(settings.kafka_bootstrap_servers, topic)
    return list(records) if len(records) >= n else None
