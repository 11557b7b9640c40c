"""Idempotent consumer: the effect and a tracking row in one transaction, offsets committed after it.

Failures are of two kinds. Infrastructure failures (PostgreSQL unreachable) are retried without limit, because
moving on would lose the effect. A message that cannot be parsed, or whose handler keeps failing, goes to
`<topic>.dlq` with the original bytes and the error after bounded retries, and consumption goes on.

A watchdog ends the run (the supervisor starts a new one) when the consumer's partitions have lag but nothing has
been consumed for `consumer_stall_seconds`: a fetcher or coordinator that stopped after a broker failure or a
rebalance, which no error would ever report. A rebalance that takes partitions away while their batch is applied
is not an error: the batch's effects are tracked, so the new owner's re-delivery from the last commit is harmless,
and the batch's offsets of the partitions no longer assigned are dropped from the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Gauge

from schemas.envelope import Envelope, InvalidEvent, decode
from schemas.topics import TopicSpec, dead_letter
from services.kit.db import Connection, Pool
from services.kit.kafka import client_options, make_producer, start_producer, stop_producer
from services.kit.logging import mask_personnummer
from services.kit.memory import collector_paused
from services.kit.settings import ServiceSettings
from services.kit.tracing import end_hop, hop, link_to, recording, start_hop, will_record

log = structlog.get_logger(__name__)

Handler = Callable[[Connection, Envelope], Awaitable[None]]
BatchHandler = Callable[[Connection, list[Envelope]], Awaitable[None]]

CONSUMED = Counter("events_consumed_total", "Events consumed", ["consumer", "topic", "outcome"])
DEAD_LETTERS = Counter("dead_letters_total", "Messages sent to a dead-letter topic", ["consumer", "topic"])
LAG = Gauge("consumer_lag", "Messages behind the end of the partition", ["consumer", "topic", "partition"])


def _as_hop(envelope: Envelope, traceparent: str) -> None:
    """Handling an event is a hop of its trace: the handler sees the hop's own traceparent, so what it emits is the
    hop's child. The envelope was decoded here and has no other holder, so it is updated in place (a model_copy
    would cost as much as a tenth of decoding it)."""
    envelope.__dict__["traceparent"] = traceparent


_INFRASTRUCTURE_ERRORS = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
)


class HandlerError(Exception):
    """A handler's way to say the event can never be processed (it goes to the dead-letter topic at once)."""


class ConsumerStalled(Exception):
    """The watchdog's verdict: partitions with lag and nothing consumed for the stall time (the run ends, and the
    supervisor starts a new consumer)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_backoff: float = 0.1
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.first_backoff * float(2 ** min(attempt - 1, 32)), self.max_backoff)


async def track(conn: Connection, consumer: str, envelopes: list[Envelope]) -> list[Envelope]:
    """Write the tracking rows of `consumer` for the envelopes (in the caller's transaction); the envelopes not seen
    before, in order (an event twice in the list counts once)."""
    rows = await conn.fetch(
        "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        [e.id for e in envelopes],
    )
    new = {row["event_id"] for row in rows}
    fresh = []
    for envelope in envelopes:
        if envelope.id in new:
            new.discard(envelope.id)
            fresh.append(envelope)
    return fresh


class IdempotentConsumer:
    """Consumes topics with one consumer group, processing each event exactly once in effect."""

    def __init__(
        self,
        settings: ServiceSettings,
        pool: Pool,
        *,
        name: str,
        topics: Sequence[TopicSpec],
        handler: Handler,
        retry: RetryPolicy | None = None,
        max_records: int = 500,
        group_id: str | None = None,
        on_commit: Callable[[], None] | None = None,
        batch_handler: BatchHandler | None = None,
        one_transaction_per_fetch: bool = False,
        decoder: Callable[[bytes], Envelope] = decode,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self.name = name  # also the key of the tracking rows: a new group with the same name replays harmlessly
        self._group_id = settings.topic_prefix + (group_id or name)
        self._topics = {settings.topic(t.name): t for t in topics}
        self._handler = handler
        self._retry = retry or RetryPolicy()
        self._max_records = max_records
        self._on_commit = on_commit
        self._batch_handler = batch_handler  # set-based handling of a batch; must equal `handler` one by one
        # All partitions of a fetch in one transaction instead of one each, concurrently: better for handlers
        # whose batches all update the same rows (aggregates), which concurrent transactions would queue on.
        self._one_transaction_per_fetch = one_transaction_per_fetch
        # Bytes → envelope; raises InvalidEvent. A consumer that reads a few fields of a large event may validate
        # only those (see services/stats/released.py).
        self._decoder = decoder
        self.assigned = False
        self._progress_at = time.monotonic()  # when a batch was last applied, or the consumer last seen caught up
        self._applied: dict[TopicPartition, int] = {}  # the next offset to apply, per partition, as applied here

    def dead_letter_topics(self) -> list[TopicSpec]:
        """The dead-letter topics this consumer may write to (create them at start-up)."""
        return [dead_letter(spec) for spec in self._topics.values()]

    async def run(self) -> None:
        """Consume until cancelled."""
        consumer = AIOKafkaConsumer(
            *self._topics,
            **client_options(self._settings),
            group_id=self._group_id,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        dlq_producer = make_producer(self._settings, client_id=f"{self.name}-dlq")
        try:
            await start_producer(dlq_producer)
            try:
                await consumer.start()
                await self._consume_watched(consumer, dlq_producer)
            finally:
                # Also when cancelled during start(): its group coordination may already run in the background, and
                # a consumer never stopped would stay a member of the group (heartbeating) while the loop lives.
                await self._stop(consumer)
        finally:
            await stop_producer(dlq_producer)

    async def _stop(self, consumer: AIOKafkaConsumer, within: float = 15.0) -> None:
        """stop() with a bound: it leaves the group and closes connections, which a paused broker never answers, and
        the supervisor's new consumer must not wait for that."""
        stopping = asyncio.ensure_future(consumer.stop())
        done, _ = await asyncio.wait([stopping], timeout=within)
        if done:
            stopping.result()
            return
        stopping.cancel()
        await asyncio.wait([stopping])
        log.warning("consumer.stop.abandoned", consumer=self.name, within_seconds=within)

    async def _consume_watched(self, consumer: AIOKafkaConsumer, dlq: AIOKafkaProducer) -> None:
        """Consume, and end with ConsumerStalled when the watchdog finds the consumer stalled."""
        stall = self._settings.consumer_stall_seconds
        self._progress_at = time.monotonic()
        self._applied.clear()
        consuming = asyncio.create_task(self._consume(consumer, dlq), name=f"consume:{self.name}")
        try:
            while True:
                done, _ = await asyncio.wait([consuming], timeout=min(max(stall / 4, 0.25), 5.0))
                if done:
                    consuming.result()  # _consume ends only by an exception (or cancellation)
                    return
                await self._watch(consumer, stall)
        finally:
            if not consuming.done():
                consuming.cancel()
            await asyncio.wait([consuming])

    async def _watch(self, consumer: AIOKafkaConsumer, stall: float) -> None:
        idle = time.monotonic() - self._progress_at
        if idle < stall:
            return
        lag = await self._lag(consumer)
        if lag is None:
            return  # the brokers do not answer: a new consumer would fare no better; the next look decides
        if lag == 0:
            self._progress_at = time.monotonic()  # caught up: idle, not stalled
            return
        reason = "partitions have lag and nothing was consumed"
        # Names, counts and offsets only: no event content (personal data) in this line.
        log.error(
            "consumer.stalled",
            consumer=self.name,
            group=self._group_id,
            lag=lag,
            partitions=len(consumer.assignment()),
            stalled_seconds=round(idle, 1),
            reason=reason,
        )
        raise ConsumerStalled(f"consumer {self.name}: {reason} for {idle:.0f} s ({lag} messages behind)")

    async def _lag(self, consumer: AIOKafkaConsumer, within: float = 10.0) -> int | None:
        """Messages behind the partitions' ends, from what this consumer applied or its group committed; None when
        the brokers cannot tell within `within` seconds."""
        partitions = set(consumer.assignment())
        if not partitions:
            return 0
        try:
            async with asyncio.timeout(within):
                ends = await consumer.end_offsets(list(partitions))
                lag = 0
                for tp, end in ends.items():
                    if tp not in consumer.assignment():
                        continue  # revoked meanwhile
                    committed = await consumer.committed(tp)
                    done = max(self._applied.get(tp, 0), committed if committed is not None else 0)
                    if committed is None and tp not in self._applied:
                        done = await consumer.position(tp)  # nothing committed: where the group starts
                    lag += max(end - done, 0)
                return lag
        except (KafkaError, TimeoutError) as exc:
            log.info("consumer.watchdog.lag_unknown", consumer=self.name, error=type(exc).__name__)
            return None

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit the offsets of the partitions still assigned. Those of a partition revoked while its batch was
        applied are dropped: its new owner starts from the last commit, and the tracking rows make the effects of the
        batch's re-delivery none. A commit the broker refuses because the group rebalanced meanwhile is dropped for
        the same reason."""
        assigned = consumer.assignment()
        revoked = [tp for tp in offsets if tp not in assigned]
        if revoked:
            log.info("consumer.commit.revoked", consumer=self.name, partitions=len(revoked), stage="before commit")
            offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("consumer.commit.revoked", consumer=self.name, partitions=len(offsets), error=type(exc).__name__)

    async def _consume(self, consumer: AIOKafkaConsumer, dlq: AIOKafkaProducer) -> None:
        committing: asyncio.Task[None] | None = None
        try:
            while True:
                fetch_started = time.perf_counter()
                batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                self.assigned = bool(consumer.assignment())
                if not batches:
                    continue
                apply_started = time.perf_counter()
                # Partitions are applied concurrently, one transaction each: keys (citizens) never span
                # partitions, so their transactions touch different rows, and the database waits of one overlap
                # the others'. A consumer whose batches all update the same rows (aggregates) asks for one
                # transaction per fetch instead.
                if self._one_transaction_per_fetch and len(self._topics) == 1:
                    await self._process_batch([r for records in batches.values() for r in records], dlq)
                else:
                    await asyncio.gather(*(self._process_batch(records, dlq) for records in batches.values()))
                # Committed only after every record's transaction committed: a crash replays, never skips. The
                # commit (a broker round trip) runs while the next batch is fetched and applied; commits stay
                # one at a time and in order, and a failed one surfaces here, one batch later.
                applied = {tp: records[-1].offset + 1 for tp, records in batches.items()}
                self._applied.update(applied)
                self._progress_at = time.monotonic()
                if committing is not None:
                    await committing
                committing = asyncio.create_task(self._commit(consumer, applied))
                assigned = consumer.assignment()
                for tp, records in batches.items():
                    if tp in assigned:  # highwater() asserts the partition is assigned
                        self._record_lag(consumer, tp, records[-1].offset)
                log.debug(
                    "consumer.loop",
                    consumer=self.name,
                    records=sum(len(r) for r in batches.values()),
                    partitions=len(batches),
                    fetch_ms=round((apply_started - fetch_started) * 1000, 1),
                    apply_and_commit_ms=round((time.perf_counter() - apply_started) * 1000, 1),
                )
        finally:
            if committing is not None:
                await asyncio.wait([committing])  # the last commit ends before the consumer stops
                if not committing.cancelled() and committing.exception() is not None:
                    log.warning("consumer.commit.failed", consumer=self.name, error=repr(committing.exception()))

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        end = consumer.highwater(tp)
        if end is not None:
            LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(end - offset - 1, 0))

    async def _process_batch(self, records: list[ConsumerRecord[bytes, bytes]], dlq: AIOKafkaProducer) -> None:
        """All records of one fetch in one transaction; if anything fails, each record again on its own.

        One transaction per batch is what makes the consumer fast; the per-record path keeps the retry and
        dead-letter behaviour exact, and the batch's rollback guarantees nothing of it took effect.
        """
        if len(records) == 1:
            await self._process(records[0], dlq)
            return
        decoded: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        invalid: list[tuple[ConsumerRecord[bytes, bytes], InvalidEvent]] = []
        try:
            # The cyclic collector waits while a batch is decoded and applied: all its objects (tens per event)
            # live until the transaction commits, so a pass would find nothing to free, yet the passes cost as
            # much as the decoding (see memory.py); reference counting frees the batch afterwards.
            with collector_paused():
                for record in records:
                    try:
                        decoded.append((record, self._decoder(record.value or b"")))
                    except InvalidEvent as exc:
                        invalid.append((record, exc))
                processed = await self._apply_batch([envelope for _, envelope in decoded], records[0].topic)
                duplicates = len(decoded) - processed
                decoded.clear()  # freed before the collector runs again, or its first pass would walk them all
        except Exception as exc:
            log.warning("consumer.batch.fallback", consumer=self.name, size=len(records), error=type(exc).__name__)
            for record in records:
                await self._process(record, dlq)
            return
        for record, problem in invalid:
            await self._dead_letter(record, dlq, f"InvalidEvent: {problem}", attempts=1)
        topic = records[0].topic
        CONSUMED.labels(self.name, topic, "processed").inc(processed)
        CONSUMED.labels(self.name, topic, "duplicate").inc(duplicates)
        if processed and self._on_commit is not None:
            self._on_commit()

    def _span_attributes(self, topic: str, envelope: Envelope | None = None) -> dict[str, str | int]:
        """OpenTelemetry's messaging attributes of the handling of one event (or a batch) of `topic`."""
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": self._group_id,
        }
        if envelope is not None:
            attributes["messaging.message.id"] = str(envelope.id)
            attributes["cloudevents.event_type"] = envelope.type
        return attributes

    async def _apply_batch(self, envelopes: list[Envelope], topic: str) -> int:
        spans: list[Span | None] = []
        scope: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if recording():
            # The batch's database calls are one span, linked to the events it handles; each event's handling is
            # a span of its own trace (below), the parent of what the handler emits.
            links = [link for link in (link_to(e.traceparent) for e in envelopes[:128]) if link is not None]
            batch = self._span_attributes(topic) | {"messaging.batch.message_count": len(envelopes)}
            scope = hop(None, f"process {topic}", kind=SpanKind.CONSUMER, attributes=batch, links=links)
        try:
            with scope:
                processed = await self._apply_batch_in(envelopes, topic, spans)
        except BaseException as exc:
            for span in spans:
                end_hop(span, exc)
            raise
        for span in spans:
            end_hop(span)
        return processed

    async def _apply_batch_in(self, envelopes: list[Envelope], topic: str, spans: list[Span | None]) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await track(conn, self.name, envelopes)
            for envelope in fresh:
                span, traceparent = start_hop(
                    envelope.traceparent,
                    f"process {topic}",
                    kind=SpanKind.CONSUMER,
                    attributes=self._span_attributes(topic, envelope) if will_record(envelope.traceparent) else None,
                )
                spans.append(span)
                _as_hop(envelope, traceparent)
            if self._batch_handler is not None:
                await self._batch_handler(conn, fresh)
            else:
                for envelope in fresh:
                    structlog.contextvars.bind_contextvars(correlation_id=envelope.correlationid)
                    await self._handler(conn, envelope)
                structlog.contextvars.unbind_contextvars("correlation_id")
            return len(fresh)

    async def _process(self, record: ConsumerRecord[bytes, bytes], dlq: AIOKafkaProducer) -> None:
        topic = record.topic
        try:
            envelope = self._decoder(record.value or b"")
        except InvalidEvent as exc:
            await self._dead_letter(record, dlq, f"InvalidEvent: {exc}", attempts=1)
            return
        attempt = 0
        while True:
            attempt += 1
            structlog.contextvars.bind_contextvars(correlation_id=envelope.correlationid, event_id=str(envelope.id))
            try:
                with hop(
                    envelope.traceparent,
                    f"process {topic}",
                    kind=SpanKind.CONSUMER,
                    attributes=self._span_attributes(topic, envelope) if will_record(envelope.traceparent) else None,
                ) as traceparent:
                    _as_hop(envelope, traceparent)
                    processed = await self._apply(envelope)
            except _INFRASTRUCTURE_ERRORS as exc:
                # Without the database nothing can be done; wait for it rather than dead-letter good events.
                log.warning("consumer.infrastructure.retry", consumer=self.name, error=type(exc).__name__)
                await asyncio.sleep(self._retry.max_backoff)
                attempt = 0
                continue
            except HandlerError as exc:
                await self._dead_letter(record, dlq, f"HandlerError: {exc}", attempts=attempt)
                return
            except Exception as exc:
                if attempt >= self._retry.max_attempts:
                    await self._dead_letter(record, dlq, f"{type(exc).__name__}: {exc}", attempts=attempt)
                    return
                log.warning("consumer.handler.retry", consumer=self.name, attempt=attempt, error=type(exc).__name__)
                await asyncio.sleep(self._retry.backoff(attempt))
                continue
            finally:
                structlog.contextvars.unbind_contextvars("correlation_id", "event_id")
            CONSUMED.labels(self.name, topic, "processed" if processed else "duplicate").inc()
            if processed and self._on_commit is not None:
                self._on_commit()
            return

    async def _apply(self, envelope: Envelope) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            tracked = await conn.fetchval(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                envelope.id,
            )
            if not tracked:
                return False
            await self._handler(conn, envelope)
            return True

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], dlq: AIOKafkaProducer, error: str, *, attempts: int
    ) -> None:
        source = record.topic
        error = mask_personnummer(error)[:1000]
        headers = [
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")],
            ("dlq.error", error.encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.source.topic", source.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
            ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await (await dlq.send(f"{source}.dlq", value=record.value, key=record.key, headers=headers))
        DEAD_LETTERS.labels(self.name, source).inc()
        CONSUMED.labels(self.name, source, "dead_lettered").inc()
        log.error(
            "consumer.dead_lettered",
            consumer=self.name,
            topic=source,
            partition=record.partition,
            offset=record.offset,
            error=error,
        )
