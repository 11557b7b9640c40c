"""The kit's producer bounds (aiokafka #1101, #1017): while the broker is paused, an idempotent producer's pending
send is never acknowledged nor failed and its stop() never returns. Reproduced on a broker of this test's own:
unbounded, both still hang after 40 s; the kit's `stop_producer` returns within its bound (the pending send fails)
and `acknowledged` raises, so the outbox relay replaces its producer and publishes everything once when the broker
is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError

from deploy.local.infra import KafkaNode
from schemas.topics import TopicSpec
from services.kit.db import KIT_MIGRATIONS, close_pool, create_pool, migrate
from services.kit.kafka import acknowledged, ensure_topics, make_producer, stop_producer
from services.kit.outbox import OutboxRelay
from services.kit.settings import ServiceSettings
from tests.harness import eventually, free_port, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def paused_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    node = KafkaNode(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port(), heap="256m")
    node.start(180)
    try:
        yield node
    finally:
        node.resume()
        node.stop()


@pytest.fixture
async def settings(paused_kafka: KafkaNode, unique: str) -> AsyncIterator[ServiceSettings]:
    settings = ServiceSettings(kafka_bootstrap_servers=paused_kafka.bootstrap, topic_prefix=f"t{unique}.")
    await ensure_topics(settings, [TopicSpec("bounds", "k")])
    yield settings
    paused_kafka.resume()


async def test_a_paused_broker_hangs_an_unbounded_stop_and_the_kit_bounds_it(
    paused_kafka: KafkaNode, settings: ServiceSettings
) -> None:
    topic = settings.topic("bounds")
    stuck, bounded = make_producer(settings, "stuck"), make_producer(settings, "bounded")
    for producer in (stuck, bounded):
        await producer.start()
        await producer.send_and_wait(topic, b"warm", key=b"k")
    paused_kafka.pause()
    try:
        pending = [await p.send(topic, b"while paused", key=b"k") for p in (stuck, bounded)]
        # The defect: neither acknowledged nor failed, and stop() waits for it.
        unbounded_stop = asyncio.ensure_future(stuck.stop())
        done, _ = await asyncio.wait([unbounded_stop, pending[0]], timeout=40)
        assert not done, "aiokafka no longer hangs here: the kit's bounds may be unnecessary"
        with pytest.raises(KafkaTimeoutError):
            await acknowledged([pending[1]], within=2)
        started = time.monotonic()
        await stop_producer(bounded, flush_seconds=3)
        assert time.monotonic() - started < 3 + 3 + 3  # the flush bound, the close bound, slack
        await asyncio.wait([pending[1]], timeout=5)
        assert pending[1].done()
        with pytest.raises((KafkaError, asyncio.CancelledError)):
            pending[1].result()  # failed, not reported sent: an outbox keeps the row
        await stop_producer(stuck, flush_seconds=1)
        unbounded_stop.cancel()
    finally:
        paused_kafka.resume()


async def test_the_relay_replaces_a_producer_stuck_on_a_paused_broker_and_publishes_once(
    paused_kafka: KafkaNode, settings: ServiceSettings, schema: str
) -> None:
    await migrate(settings.database_url, schema, KIT_MIGRATIONS)
    pool = await create_pool(settings.database_url, schema, application="bounds", max_size=4)
    relay = OutboxRelay(pool, lambda: make_producer(settings, "relay"), lock_name=f"bounds-{schema}",
                        publish_timeout=5)  # fmt: skip
    task = asyncio.create_task(relay.run())
    topic = settings.topic("bounds")
    try:
        conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
        try:
            await _add(conn, topic, b"warm")
            relay.notify()
            await eventually(lambda: _true(relay.state.last_publish is not None), timeout=60, what="a first publish")
            paused_kafka.pause()
            for i in range(20):
                await _add(conn, topic, f"event-{i}".encode())
        finally:
            await conn.close()
        relay.notify()
        # Bounded: the stuck batch times out and the relay says so (it used to wait, silent, for the broker).
        await eventually(lambda: _true("KafkaTimeoutError" in (relay.state.last_error or "")), timeout=60,
                         what="the relay to give up on the stuck producer")  # fmt: skip
        paused_kafka.resume()
        await eventually(lambda: _outbox_empty(settings, schema), timeout=120, what="the outbox to be published")
        values = [r.value for r in await read_topic(settings.kafka_bootstrap_servers, topic)]
        published = [v for v in values if v and v.startswith(b"event-")]
        assert sorted(set(published)) == sorted(f"event-{i}".encode() for i in range(20))  # none lost
        # A batch may be published twice (the stuck producer's attempt can land later): consumers are idempotent.
    finally:
        paused_kafka.resume()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close_pool(pool)


async def _add(conn: asyncpg.Connection, topic: str, value: bytes) -> None:
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, value, headers) VALUES (gen_random_uuid(), $1, $2, $3, '[]'::jsonb)",
        topic, b"k", value,
    )  # fmt: skip


async def _true(value: bool) -> bool:
    return value


async def _outbox_empty(settings: ServiceSettings, schema: str) -> bool:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
    try:
        return bool(await conn.fetchval("SELECT count(*) = 0 FROM outbox"))
    finally:
        await conn.close()
