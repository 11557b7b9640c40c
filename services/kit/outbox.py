"""Transactional outbox: events saved with the state change, and the relay that publishes them in order.

The relay holds a PostgreSQL advisory lock, so one relay per service publishes at a time and per-key order is the
outbox order. A crash after publishing but before deleting the rows republishes them: events carry a unique id and
every consumer is idempotent, so the effect happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge

from schemas.envelope import CONTENT_TYPE, Envelope, encode
from services.kit.db import Connection, Pool
from services.kit.kafka import acknowledged, start_producer, stop_producer
from services.kit.tasks import Backoff
from services.kit.tracing import hop, link_to, recording

log = structlog.get_logger(__name__)

PUBLISHED = Counter("outbox_published_total", "Events published from the outbox", ["topic"])
BACKLOG = Gauge("outbox_backlog", "Events in the outbox not yet published")
LAST_PUBLISH = Gauge("outbox_last_publish_timestamp_seconds", "When the relay last published a batch")
RELAY_ERRORS = Counter("outbox_relay_errors_total", "Failed publish attempts of the outbox relay")
_BACKLOG_EVERY = 1.0  # seconds between two measurements of the backlog gauge by an idle relay


def event_headers(envelope: Envelope) -> list[tuple[str, str]]:
    """Kafka headers of an event, never personal data: the CloudEvents structured-mode content type (no `ce_*`
    header: the Kafka binding keeps those for binary mode), the correlation id and the W3C trace context."""
    return _headers(envelope.correlationid, envelope.traceparent)


def _headers(correlation_id: str, traceparent: str | None) -> list[tuple[str, str]]:
    headers = [("content-type", CONTENT_TYPE), ("correlation_id", correlation_id)]
    if traceparent:
        headers.append(("traceparent", traceparent))
    return headers


OUTBOX_COLUMNS = "event_id, topic, key, value, headers"


def outbox_values(
    topic: str, key: str, envelope: Envelope, raw: dict[str, str | bytes] | None = None
) -> tuple[object, ...]:
    """The values of an outbox row, in OUTBOX_COLUMNS order (for repositories that write it in their statement).

    `raw`: payload fields already serialised (see `schemas.envelope.encode`)."""
    return envelope.id, topic, key.encode(), encode(envelope, raw), [list(h) for h in event_headers(envelope)]


def outbox_values_of_bytes(
    topic: str,
    key: str,
    value: bytes,
    *,
    event_id: UUID,
    event_type: str,
    correlation_id: str,
    traceparent: str | None,
) -> tuple[object, ...]:
    """`outbox_values` of an event already encoded (`schemas.envelope.encode_fresh`): the same row, given the
    envelope attributes its headers carry."""
    headers = _headers(correlation_id, traceparent)
    return event_id, topic, key.encode(), value, [list(h) for h in headers]


async def add_to_outbox(conn: Connection, topic: str, key: str, envelope: Envelope) -> None:
    """Save an event for publication; call inside the transaction that makes the change it announces."""
    await conn.execute(
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",  # noqa: S608 - a constant column list
        *outbox_values(topic, key, envelope),
    )


async def add_many_to_outbox(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Save several events (rows from `outbox_values`) in one round trip."""
    if rows:
        await conn.executemany(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",  # noqa: S608 - constant columns
            rows,
        )


async def outbox_backlog(conn: Connection | Pool) -> int:
    """How many events wait in the outbox."""
    count: int = await conn.fetchval("SELECT count(*) FROM outbox")
    return count


async def outbox_readiness(pool: Pool, relay: OutboxRelay) -> dict[str, dict[str, object]]:
    """Readiness checks of a service with an outbox: the database is required; the relay is informative, since
    the outbox holds events while Kafka is away."""
    checks: dict[str, dict[str, object]] = {}
    try:
        checks["database"] = {"ok": True, "outbox_backlog": await outbox_backlog(pool)}
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    checks["relay"] = {
        "ok": relay.state.leader and relay.state.last_error is None,
        "required": False,
        "leader": relay.state.leader,
        "last_publish": relay.state.last_publish.isoformat() if relay.state.last_publish else None,
        "last_error": relay.state.last_error,
    }
    return checks


@dataclass
class RelayState:
    running: bool = False
    leader: bool = False
    last_publish: datetime | None = None
    last_error: str | None = None


class OutboxRelay:
    """Publishes the outbox of one service schema to Kafka with an idempotent, acks=all producer."""

    def __init__(
        self,
        pool: Pool,
        producer_factory: Callable[[], AIOKafkaProducer],
        *,
        lock_name: str,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        max_backoff: float = 5.0,
        publish_timeout: float = 30.0,
    ) -> None:
        self._pool = pool
        self._publish_timeout = publish_timeout  # a batch not acknowledged by then: a new producer tries again
        self._producer_factory = producer_factory
        self._lock_key = zlib.crc32(lock_name.encode())
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wakeup = asyncio.Event()
        self.state = RelayState()

    def notify(self) -> None:
        """Tell the relay that a transaction just committed outbox rows."""
        self._wakeup.set()

    async def run(self) -> None:
        """Publish until cancelled; reconnects to Kafka and PostgreSQL with backoff."""
        self.state.running = True
        # _run_as_leader ends only by an error: the pause starts small again after a run that lasted (before, it
        # never did, and every error after the first few of a process's life waited the longest pause).
        backoff = Backoff(0.2, self._max_backoff)
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._run_as_leader()
                except (KafkaError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    RELAY_ERRORS.inc()
                    self.state.last_error = f"{type(exc).__name__}: {exc}"
                    pause = backoff.after(time.monotonic() - started)
                    log.warning("outbox.relay.error", error=self.state.last_error, retry_in=pause)
                    await asyncio.sleep(pause)
        finally:
            self.state.running = False
            self.state.leader = False

    async def _run_as_leader(self) -> None:
        async with self._pool.acquire() as lock_conn:
            while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                self.state.leader = False
                await asyncio.sleep(self._poll_interval * 4)
            self.state.leader = True
            producer = self._producer_factory()
            try:
                await start_producer(producer, within=self._publish_timeout)
                await self._publish_loop(producer)
            finally:
                self.state.leader = False
                await stop_producer(producer)
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)

    async def _publish_loop(self, producer: AIOKafkaProducer) -> None:
        backlog_measured = 0.0
        while True:
            # Cleared before the batch is read, never after: a commit announced while this batch is being
            # published sets it again, so the relay goes round at once. Cleared after the batch, such a
            # notification was lost and that commit's rows waited up to a poll interval (0.5 s) for nothing.
            self._wakeup.clear()
            published = await self.publish_batch(producer)
            if published < self._batch_size:
                now = time.monotonic()
                if now - backlog_measured >= _BACKLOG_EVERY:  # count(*) is a scan: not on every round
                    backlog_measured = now
                    BACKLOG.set(await outbox_backlog(self._pool))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval)

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish the oldest outbox rows, wait for every acknowledgement, then delete them."""
        rows: Sequence[asyncpg.Record] = await self._pool.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1", self._batch_size
        )
        if not rows:
            return 0
        if not recording():
            await self._publish(producer, rows)
            return len(rows)
        # One producer span per batch, linked to the span each event was written in: the outbox is where the
        # request's trace and the relay's meet (the consumer's span continues the event's own trace).
        links = [link for link in (link_to(_traceparent_of(row)) for row in rows[:128]) if link is not None]
        attributes = {"messaging.system": "kafka", "messaging.operation.type": "send"}
        with hop(None, "outbox publish", kind=SpanKind.PRODUCER, attributes=attributes, links=links):
            await self._publish(producer, rows)
        return len(rows)

    async def _publish(self, producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record]) -> None:
        futures = [
            await producer.send(
                row["topic"],
                value=row["value"],
                key=row["key"],
                # Rows written before events followed the CloudEvents Kafka binding carry ce_* headers: dropped.
                headers=[(name, value.encode()) for name, value in row["headers"] if not name.startswith("ce_")],
            )
            for row in rows
        ]
        await acknowledged(futures, within=self._publish_timeout)
        await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
        now = datetime.now(UTC)
        self.state.last_publish = now
        self.state.last_error = None
        LAST_PUBLISH.set(now.timestamp())
        log.debug("outbox.relay.published", count=len(rows))


def _traceparent_of(row: asyncpg.Record) -> str | None:
    return next((value for name, value in row["headers"] if name == "traceparent"), None)
