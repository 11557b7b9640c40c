"""Replaying consent.released.v1 changes nothing, and the operator's rebuild (interrupted and resumed) ends with
exactly what the incremental ingest built."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import CONSENT_RELEASED
from services.kit.consumer import IdempotentConsumer
from services.kit.db import create_pool, migrate
from services.kit.kafka import client_options
from services.stats import repo
from services.stats.handlers import Ingest, on_batch, on_event
from services.stats.rebuild import CONSUMER_NAME, rebuild
from services.stats.repo import MIGRATIONS
from services.stats.reports import REPORTS, compute, default_period
from services.stats.settings import StatsSettings
from tests.harness import connect, eventually, read_topic
from tests.integration.stats.conftest import Released, StatsService, processed, running

pytestmark = pytest.mark.integration


async def snapshot(settings: StatsSettings, service: StatsService | None = None) -> dict[str, Any]:
    """Everything statistics derived, in a comparable form."""
    async with connect(settings.database_url, settings.db_schema) as conn:
        state: dict[str, Any] = {
            "facts": await repo.table_dump(conn, "facts", "certificate_id"),
            "cases": await repo.table_dump(conn, "cases", "pseudonym, provider, first_day"),
            "revoked": await repo.table_dump(conn, "revoked", "certificate_id"),
            "aggregates": [
                dict(r.items())
                for r in await conn.fetch(
                    "SELECT * FROM aggregates WHERE n <> 0 ORDER BY dimension, first_month, last_month, value, "
                    "county, provider, sex"
                )
            ],
        }
        # every report of this year, computed from the aggregates (not the stored publications)
        at = datetime(2000, 1, 1, tzinfo=UTC)
        year = default_period(datetime.now(UTC).date())
        for name, spec in REPORTS.items():
            state[f"report:{name}"] = await compute(conn, spec, year, None, at, {}, preliminary=True)
    if service is not None:
        assert (await service.report("sex"))["rows"]  # and the service answers
    return state


async def populate(released: Released) -> None:
    rnd = random.Random(6)
    persons = released.factory.persons[:40]
    issued: list[tuple[Any, dict[str, Any]]] = []
    for i in range(160):
        person = rnd.choice(persons)
        body = await released.release(person, cert_type=None, unit_index=rnd.randrange(6))
        issued.append((person, body))
        if i % 17 == 0:
            await released.revoke(person, body["id"], body["type"])
    for person, body in rnd.sample(issued, 5):
        await released.revoke(person, body["id"], body["type"])
    ahead = released.factory.certificate("LISJP", person=persons[0])
    await released.revoke(persons[0], ahead["id"])
    await released.release(persons[0], periods=None)
    # a correction that replaces a certificate (and one whose replaced certificate comes after it)
    replaced = await released.release(persons[3])
    await released.release(persons[3], replaces=replaced["id"])
    ahead_of_it = released.factory.certificate("LISJP", person=persons[4])
    await released.release(persons[4], replaces=ahead_of_it["id"])
    await released.release(persons[4], body=ahead_of_it)  # arrives after its replacement: stays out
    # a withdrawal between releases in one batch: what the batch staged before it must not come back after it
    await released.release(persons[1])
    await released.withdraw(persons[1])
    await released.release(persons[2])


async def topic_ends(settings: StatsSettings) -> dict[TopicPartition, int]:
    """The end offset of every partition of the released topic that has records."""
    ends: dict[TopicPartition, int] = {}
    for record in await read_topic(settings.kafka_bootstrap_servers, settings.topic(CONSENT_RELEASED.name)):
        tp = TopicPartition(record.topic, record.partition)
        ends[tp] = max(ends.get(tp, 0), record.offset + 1)
    return ends


async def group_at(settings: StatsSettings, group: str, ends: dict[TopicPartition, int]) -> bool:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())


async def test_replay_changes_nothing_and_rebuild_equals_incremental(
    stats_settings: StatsSettings, released: Released
) -> None:
    await populate(released)
    async with running(stats_settings) as service:
        await eventually(lambda: processed(stats_settings, len(released.events)), what="every event processed")
        incremental = await snapshot(stats_settings, service)
        assert incremental["facts"]
        assert incremental["cases"]

        # replay from offset 0: a new consumer group with the ingest's tracking name
        pool = await create_pool(stats_settings.database_url, stats_settings.db_schema, application="test")
        ingest = Ingest(stats_settings.pseudonym_key.get_secret_value())
        replayer = IdempotentConsumer(
            stats_settings, pool, name=CONSUMER_NAME, group_id="replay", topics=[CONSENT_RELEASED],
            handler=functools.partial(on_event, ingest), batch_handler=functools.partial(on_batch, ingest),
        )  # fmt: skip
        ends = await topic_ends(stats_settings)
        task = asyncio.create_task(replayer.run())
        try:
            await eventually(lambda: group_at(stats_settings, f"{stats_settings.topic_prefix}replay", ends),
                             timeout=60, what="the replay to reach the end")  # fmt: skip
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.close()
        assert await snapshot(stats_settings, service) == incremental

    # rebuild, interrupted after a few batches, then resumed
    first = await rebuild(stats_settings, batch_size=20, progress=False, stop_after_batches=3)
    assert not first.complete
    async with connect(stats_settings.database_url, stats_settings.db_schema) as conn:
        assert await repo.rebuild_in_progress(conn)
    second = await rebuild(stats_settings, batch_size=20, progress=False)
    assert second.complete
    assert second.resumed
    assert await group_at(stats_settings, f"{stats_settings.topic_prefix}{CONSUMER_NAME}", ends)
    async with running(stats_settings) as service:
        assert await snapshot(stats_settings, service) == incremental
        # the service goes on after the rebuild: a new certificate is counted once
        await released.release(released.factory.persons[50])
        await eventually(lambda: processed(stats_settings, len(released.events)), what="the new event")
        after = await snapshot(stats_settings)
        assert len(after["facts"]) == len(incremental["facts"]) + 1


async def test_batches_of_any_size_end_where_one_event_at_a_time_ends(
    stats_settings: StatsSettings, released: Released
) -> None:
    await populate(released)
    ingest = Ingest(stats_settings.pseudonym_key.get_secret_value())
    other = stats_settings.model_copy(update={"db_schema": f"{stats_settings.db_schema}_b"})
    rnd = random.Random(9)
    try:
        one: Callable[[], int] = lambda: 1  # noqa: E731
        some: Callable[[], int] = lambda: rnd.randrange(1, 60)  # noqa: E731
        for settings, sizes in ((stats_settings, one), (other, some)):
            await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
            pool = await create_pool(settings.database_url, settings.db_schema, application="test", max_size=2)
            try:
                events, start = released.events, 0
                while start < len(events):
                    size = sizes()
                    async with pool.acquire() as conn, conn.transaction():
                        await on_batch(ingest, conn, events[start : start + size])
                    start += size
            finally:
                await pool.close()
        assert await snapshot(other) == await snapshot(stats_settings)
    finally:
        dropper = await asyncpg.connect(stats_settings.database_url)
        try:
            await dropper.execute(f'DROP SCHEMA IF EXISTS "{other.db_schema}" CASCADE')
        finally:
            await dropper.close()
