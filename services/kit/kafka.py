"""Kafka clients configured the way this system needs them, and topic creation at service start-up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import ssl
import time
from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

from schemas.topics import TopicSpec
from services.kit.settings import ServiceSettings

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_TOPIC_AUTHORIZATION_FAILED = 29


@functools.lru_cache(maxsize=16)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    """Verifies the brokers' certificates (and their names) against `cafile`, or the system's trust store."""
    context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    return context


def client_options(settings: ServiceSettings | None = None, *, bootstrap: str | None = None) -> dict[str, Any]:
    """What every aiokafka producer, consumer and admin client is given to reach the brokers: where they are and how
    to prove who the service is (the security settings of ServiceSettings; without `settings`, the environment's).
    `bootstrap` replaces the servers of the settings (a private test cluster, say)."""
    settings = settings or ServiceSettings()
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap or settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = _ssl_context(settings.kafka_ssl_ca_file)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


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
        **client_options(settings),
        partitioner=cached_partitioner,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


async def stop_producer(producer: AIOKafkaProducer, *, flush_seconds: float = 10.0) -> None:
    """Stop a producer within `flush_seconds`. aiokafka's stop() waits for every pending batch (aiokafka #1101): while
    the brokers are away or paused it never returns, and a service shutting down or a relay replacing its producer
    hangs with it. Past the bound the sender is cancelled (its pending sends fail; an outbox keeps their rows) and the
    connections are closed, within as long again."""
    stopping = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait([stopping], timeout=flush_seconds)
    if done:
        stopping.result()
        return
    stopping.cancel()
    await asyncio.wait([stopping])
    log.warning("kafka.producer.stop.abandoned", flush_seconds=flush_seconds)
    with contextlib.suppress(TimeoutError):  # closing connections to a paused broker can wait as long again
        async with asyncio.timeout(flush_seconds):
            sender = producer._sender
            if sender is not None:
                await sender.close()
            await producer.client.close()


async def start_producer(producer: AIOKafkaProducer, *, within: float = 30.0) -> None:
    """start() with a bound: against a paused broker (connections accepted, never answered) it waits without end."""
    try:
        async with asyncio.timeout(within):
            await producer.start()
    except TimeoutError as exc:
        raise KafkaTimeoutError(f"producer not started within {within:.0f} s") from exc


async def acknowledged(futures: Iterable[asyncio.Future[object]], *, within: float) -> None:
    """Wait for the brokers to acknowledge sends, at most `within` seconds. An idempotent aiokafka producer retries
    an unacknowledged batch without end (aiokafka #1101; and it may stay stuck after an out-of-order sequence error,
    #1017): past the bound this raises KafkaTimeoutError, so the caller replaces the producer instead of waiting on."""
    try:
        async with asyncio.timeout(within):
            await asyncio.gather(*futures)
    except TimeoutError as exc:
        raise KafkaTimeoutError(f"sends not acknowledged within {within:.0f} s") from exc


async def ensure_topics(
    settings: ServiceSettings, specs: Iterable[TopicSpec], *, deadline_seconds: float = 60.0
) -> None:
    """Create the topics a service produces to or consumes from; existing ones are left as they are. A topic the
    service may not create (with ACLs a topic is created by the service that produces to it, a dead-letter topic by
    the consumers that write it) is waited for until its owner has created it."""
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
        admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in wanted if t.name not in existing]
            if missing:
                response = await admin.create_topics(missing)
                others = []
                for topic, code, *_ in response.topic_errors:
                    if code == _TOPIC_AUTHORIZATION_FAILED:
                        others.append(topic)
                    elif code not in (0, _TOPIC_ALREADY_EXISTS):
                        raise KafkaError(f"creating topic {topic} failed with error code {code}")
                created = [t for t in missing if t.name not in others]
                if created:
                    log.info("kafka.topics.created", topics=[t.name for t in created])
                    await _until_led(admin, {t.name: t.num_partitions for t in created}, deadline)
                if others:
                    raise KafkaError(f"not allowed to create {sorted(others)}: waiting for their owners to create them")
            return
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("kafka.topics.retry", error=str(exc))
            await asyncio.sleep(1.0)
        finally:
            await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, partitions: dict[str, int], deadline: float) -> None:
    """Wait until every new topic has all its partitions, each with a leader, in the metadata the broker answers.
    A created topic reaches the other brokers of a cluster a moment later; a consumer or a describe in that moment
    sees no partitions at all."""
    while True:
        described = await admin.describe_topics(list(partitions))
        led = {
            topic["topic"]
            for topic in described
            if topic["error_code"] == 0
            and len(topic["partitions"]) == partitions[topic["topic"]]
            and all(p["leader"] >= 0 for p in topic["partitions"])
        }
        if led == set(partitions):
            return
        if time.monotonic() > deadline:
            raise KafkaError(f"topics without leaders for every partition: {sorted(set(partitions) - led)}")
        await asyncio.sleep(0.2)
