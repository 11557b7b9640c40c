"""Kafka clients configured the way this system needs them, and topic creation at service start-up."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import murmur2

from schemas.topics import TopicSpec
from services.kit.settings import ServiceSettings

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36


@functools.lru_cache(maxsize=65536)
def _partition_of(key: bytes, partition_count: int) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % partition_count


def cached_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default (murmur2) placement, as the Java client does it, cached: citizen refs repeat a lot and
    aiokafka computes murmur2 in pure Python on every send."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - load spreading, not security
    return all_partitions[_partition_of(key, len(all_partitions))]


def make_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer with acks=all, set explicitly: aiokafka's defaults are weaker."""
    return AIOKafkaProducer(
        partitioner=cached_partitioner,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


async def ensure_topics(
    settings: ServiceSettings, specs: Iterable[TopicSpec], *, deadline_seconds: float = 60.0
) -> None:
    """Create the topics a service produces to or consumes from; existing ones are left as they are."""
    wanted = [
        NewTopic(
            name=settings.topic(spec.name),
            num_partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
        )
        for spec in specs
    ]
    deadline = time.monotonic() + deadline_seconds
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in wanted if t.name not in existing]
            if missing:
                response = await admin.create_topics(missing)
                for topic, code, *_ in response.topic_errors:
                    if code not in (0, _TOPIC_ALREADY_EXISTS):
                        raise KafkaError(f"creating topic {topic} failed with error code {code}")
                log.info("kafka.topics.created", topics=[t.name for t in missing])
            return
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("kafka.topics.retry", error=str(exc))
            await asyncio.sleep(1.0)
        finally:
            await admin.close()
