"""`minaintyg-admin stats rebuild`: everything statistics holds, rebuilt from consent.released.v1 from offset 0.

Run it with the stats service stopped (it refuses while the ingest's consumer group has members). The rebuild
applies the topic through the very handler the live ingest uses, in batches, and saves the next offset per
partition in the same transaction as each batch: interrupted, it resumes where it stopped. The batches change
facts, tombstones and the citizen mapping only; at the end, cases and aggregates are derived from all facts at once
by the same rules (one pass instead of recomputing a person's cases at every batch), in one transaction that is
simply done again if interrupted. Then it commits the ingest group's offsets at the end, so the service continues
after it (and the tracking rows it wrote make any replay harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from schemas.envelope import Envelope, InvalidEvent
from schemas.topics import CONSENT_RELEASED
from services.kit.consumer import HandlerError, track
from services.kit.db import Connection, Pool, close_pool, create_pool, migrate
from services.kit.kafka import client_options
from services.stats.handlers import Ingest, derive_all, ingest_gc, on_batch
from services.stats.released import decode_released
from services.stats.repo import MIGRATIONS
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)

CONSUMER_NAME = "stats-ingest"  # the live ingest's consumer (tracking rows) and group name
_TABLES = ("facts", "cases", "aggregates", "revoked")


class RebuildRefused(RuntimeError):
    """The rebuild cannot run now (the service is consuming)."""


@dataclass(frozen=True)
class RebuildResult:
    applied: int
    skipped: int
    complete: bool
    resumed: bool
    citizens: tuple[str, ...] = ()  # whose events it read (their access log records the rebuild)


async def _group_state(settings: StatsSettings, group: str) -> str:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        # DescribeGroupsResponse: groups = [(error_code, group_id, state, protocol_type, protocol, members, ...)]
        state: str = response.groups[0][2]
        return state
    finally:
        await admin.close()


# How long a group that still has members may take to empty: the service's consumers leave it when they stop, but one
# that was rejoining while another left is only dropped by the coordinator after its session timeout (10 s).
SETTLE_SECONDS = 15.0


async def _wait_for_empty_group(settings: StatsSettings, group: str, settle: float = SETTLE_SECONDS) -> None:
    """Return once the ingest's consumer group has no members; refuse if it still has some after `settle` s."""
    deadline = asyncio.get_running_loop().time() + settle
    while (state := await _group_state(settings, group)) not in ("Empty", "Dead", ""):
        if asyncio.get_running_loop().time() >= deadline:
            raise RebuildRefused(f"the stats service is consuming (consumer group {group} is {state}); stop it first")
        await asyncio.sleep(0.5)


async def rebuild(
    settings: StatsSettings, *, batch_size: int = 5000, progress: bool = True, stop_after_batches: int | None = None
) -> RebuildResult:
    """Rebuild (or resume rebuilding) statistics from the released topic."""
    group = settings.topic_prefix + CONSUMER_NAME
    await _wait_for_empty_group(settings, group)
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    pool = await create_pool(settings.database_url, settings.db_schema, application="stats-rebuild", max_size=2)
    topic = settings.topic(CONSENT_RELEASED.name)
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
        if not partitions:
            raise RebuildRefused(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        starts, resumed = await _prepare(pool, topic, ends)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp.partition])
        ingest = Ingest(pseudonym_key=settings.pseudonym_key.get_secret_value())
        total = sum(ends[tp] - starts[tp.partition] for tp in tps)
        applied = skipped = batches = 0
        seen: set[str] = set()
        with (
            ingest_gc(),
            tqdm(total=total, disable=not progress, unit="event", desc="stats rebuild", smoothing=0.1) as bar,
        ):
            # One batch is decoded while the database applies the one before (batches apply in order, one at a time).
            pending: asyncio.Task[tuple[int, int]] | None = None
            try:
                while True:
                    more = any([await consumer.position(tp) < ends[tp] for tp in tps])
                    decoded: _Decoded | None = None
                    if more:
                        fetched = await consumer.getmany(timeout_ms=1000, max_records=batch_size)
                        batch = {tp.partition: [r for r in rs if r.offset < ends[tp]] for tp, rs in fetched.items()}
                        batch = {p: records for p, records in batch.items() if records}
                        if not batch:
                            continue
                        decoded = _decode(batch)
                    if pending is not None:
                        done, dropped = await pending
                        pending = None
                        applied += done
                        skipped += dropped
                        batches += 1
                        if stop_after_batches is not None and batches >= stop_after_batches:
                            return RebuildResult(applied, skipped, complete=False, resumed=resumed)
                    if decoded is None:
                        break
                    seen.update(_citizen_refs(decoded.envelopes))
                    pending = asyncio.create_task(_apply(pool, ingest, topic, decoded))
                    bar.update(decoded.records)
            finally:
                if pending is not None:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
            async with pool.acquire() as conn, conn.transaction():
                cases = await derive_all(ingest, conn)
            log.info("stats.rebuild.derived", cases=cases)
        await _commit_group(settings, group, {tp: ends[tp] for tp in tps})
        await pool.execute("DELETE FROM rebuild_progress")
        citizens = tuple(sorted(seen))
        log.info("stats.rebuild.done", applied=applied, skipped=skipped, resumed=resumed, citizens=len(citizens))
        return RebuildResult(applied, skipped, complete=True, resumed=resumed, citizens=citizens)
    finally:
        await consumer.stop()
        await close_pool(pool)


async def _prepare(pool: Pool, topic: str, ends: dict[TopicPartition, int]) -> tuple[dict[int, int], bool]:
    """Start a rebuild (empty every table) or resume one; returns the next offset per partition."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT partition, next_offset FROM rebuild_progress WHERE topic = $1", topic)
        if rows:
            starts = {r["partition"]: r["next_offset"] for r in rows}
            await conn.executemany(
                "UPDATE rebuild_progress SET end_offset = $3 WHERE topic = $1 AND partition = $2",
                [(topic, tp.partition, end) for tp, end in ends.items()],
            )
            return {tp.partition: starts.get(tp.partition, 0) for tp in ends}, True
        await conn.execute(f"TRUNCATE {', '.join(_TABLES)}")
        await conn.execute("DELETE FROM processed_events WHERE consumer = $1", CONSUMER_NAME)
        await conn.executemany(
            "INSERT INTO rebuild_progress (topic, partition, next_offset, end_offset) VALUES ($1, $2, 0, $3)",
            [(topic, tp.partition, end) for tp, end in ends.items()],
        )
        return {tp.partition: 0 for tp in ends}, False


def _citizen_refs(envelopes: list[Envelope]) -> set[str]:
    refs = (getattr(e.data, "citizen_ref", None) for e in envelopes)
    return {ref for ref in refs if isinstance(ref, str)}


@dataclass(frozen=True)
class _Decoded:
    envelopes: list[Envelope]
    skipped: int  # records that are no valid event
    next_offsets: dict[int, int]
    records: int


def _decode(batch: dict[int, list[ConsumerRecord[bytes, bytes]]]) -> _Decoded:
    """The events of every partition fetched. As the live consumer does, records that are no valid event (which
    it dead-lettered) are left out."""
    envelopes: list[Envelope] = []
    skipped = 0
    for records in batch.values():
        for record in records:
            try:
                envelopes.append(decode_released(record.value or b""))
            except InvalidEvent:
                skipped += 1
    next_offsets = {partition: records[-1].offset + 1 for partition, records in batch.items()}
    return _Decoded(envelopes, skipped, next_offsets, sum(len(records) for records in batch.values()))


async def _apply(pool: Pool, ingest: Ingest, topic: str, decoded: _Decoded) -> tuple[int, int]:
    """Apply the events of a fetch, and save the next offsets, in one transaction (a person's events are all in
    one partition, in order). As the live consumer does, events the ingest refuses are left out."""
    envelopes, skipped, next_offsets = decoded.envelopes, decoded.skipped, decoded.next_offsets
    try:
        async with pool.acquire() as conn, conn.transaction():
            fresh = await track(conn, CONSUMER_NAME, envelopes)
            await on_batch(ingest, conn, fresh, derive=False)
            await _save_progress(conn, topic, next_offsets)
        return len(fresh), skipped
    except (HandlerError, asyncpg.DataError):
        pass
    applied = 0
    for envelope in envelopes:  # the batch held an event the ingest refuses: one at a time, leaving that out
        try:
            async with pool.acquire() as conn, conn.transaction():
                fresh = await track(conn, CONSUMER_NAME, [envelope])
                await on_batch(ingest, conn, fresh, derive=False)
                applied += len(fresh)
        except (HandlerError, asyncpg.DataError):
            skipped += 1
    async with pool.acquire() as conn:
        await _save_progress(conn, topic, next_offsets)
    return applied, skipped


async def _save_progress(conn: Connection, topic: str, next_offsets: dict[int, int]) -> None:
    await conn.executemany(
        "UPDATE rebuild_progress SET next_offset = $3 WHERE topic = $1 AND partition = $2",
        [(topic, partition, offset) for partition, offset in next_offsets.items()],
    )


async def _commit_group(settings: StatsSettings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Point the ingest's consumer group at the end the rebuild reached."""
    committer = AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign(list(offsets))
        await committer.commit(offsets)
    finally:
        await committer.stop()
