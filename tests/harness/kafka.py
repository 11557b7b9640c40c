"""Reading what services published: every record on a topic, from offset 0 to its end, without a consumer group; and
a dead letter as a consumer writes one."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from services.kit.kafka import client_options
from tests.harness.poll import eventually


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 10.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` from offset 0 to its current end (no consumer group)."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap=bootstrap), enable_auto_commit=False, auto_offset_reset="earliest"
    )
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


async def dead_lettered(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes, error: str) -> None:
    """Publish `value` on `topic` and then its dead letter on `topic`.dlq, as a consumer that failed on it writes
    one (the record's position in dlq.source.*, which the operator's replay checks the copy against)."""
    placed = await producer.send_and_wait(topic, value, key=key)
    headers = [("dlq.source.topic", topic.encode()), ("dlq.source.partition", str(placed.partition).encode()),
               ("dlq.source.offset", str(placed.offset).encode()), ("dlq.error", error.encode())]  # fmt: skip
    await producer.send_and_wait(f"{topic}.dlq", value, key=key, headers=headers)
