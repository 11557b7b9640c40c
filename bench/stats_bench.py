"""`make bench` (stats): ingest, reports and rebuild over a generated consent.released.v1, against raw consume.

One run, with a fresh topic prefix and schema: (1) N released certificates (plus 1 % revocations and a few
withdrawals) generated from CertificateFactory templates, pre-encoded and produced in batches; (2) baseline: a
plain aiokafka consumer reading the same topic to its end; (3) ingest: one stats process (`python -m
services.stats`) from start to its consumer group reaching the end; (4) every report over HTTP, p50/p99 of repeated
requests as a signed-in analyst (this year's preliminary national tables, last month's county 01 table); (5) the
utility of the protection: the published national figures of last month and of this year against the true ones
(mean absolute error per report); (6) the operator rebuild of everything from offset 0, checked to equal the
incremental result.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import machine, median, percentile
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory, synthetic_personnummer
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import encode, new_envelope
from schemas.events import CertificateReleased, CertificateRevoked, CitizenDataWithdrawn
from schemas.topics import CONSENT_RELEASED
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings
from services.stats.rebuild import CONSUMER_NAME, rebuild
from services.stats.reports import (
    REPORTS,
    Period,
    ReportView,
    compute,
    default_period,
    load_population,
    parse_period,
)
from services.stats.settings import DEV_ANALYST_TOKEN, StatsSettings
from tests.harness import ServiceProcess, connect, drop_schema, free_port

EVENT_ID = "00000000-0000-4000-8000-00000000e1d0"
CERT_ID = "cert-placeholder-000000000000000000000"
PNR = "999999999999"
REF = "f" * 64


def templates(count: int, seed: int) -> list[tuple[bytes, bool]]:
    """Encoded released events with placeholders for event id, certificate id, personnummer and citizen ref,
    signed over the last twelve months; with whether statistics counts the type (LISJP, not AG7804)."""
    factory = CertificateFactory(seed=seed, persons=50, test_patient_share=0.0)
    rnd = random.Random(seed)  # noqa: S311 - synthetic data
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        signed_now = now - timedelta(days=rnd.randrange(0, 340))
        body = factory.certificate(None, now=signed_now, unit=rnd.choices(CARE_UNITS, [6, 2, 2, 1, 1, 1])[0])
        body["id"] = CERT_ID
        body["patient"]["personnummer"] = PNR
        certificate = CERTIFICATE_ADAPTER.validate_python(body)
        data = CertificateReleased(citizen_ref=REF, certificate=certificate, test_patient=False, released_at=now)
        envelope = new_envelope(data, source="bench", time=now, correlation_id=f"bench-{i}", subject=CERT_ID)
        out.append((encode(envelope).replace(str(envelope.id).encode(), EVENT_ID.encode()), body["type"] == "LISJP"))
    return out


@dataclass
class Expected:
    """What the generated topic should leave in statistics."""

    released: int = 0
    events: int = 0
    facts: int = 0  # released LISJP certificates neither revoked nor of a withdrawn person (AG7804 is no input)


def generate(settings: StatsSettings, n: int, seed: int, expected: Expected) -> Iterator[list[tuple[bytes, bytes]]]:
    """(key, value) chunks of n released certificates of n/5 persons, then 1 % revocations, then 20 withdrawals.

    Streamed in chunks, so 1,000,000 certificates (2 GB of JSON) never sit in memory at once."""
    rnd = random.Random(seed)  # noqa: S311 - synthetic data
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    numbers: dict[str, None] = {}  # distinct: two persons with one personnummer would be one person
    while len(numbers) < max(n // 5, 10):
        numbers[synthetic_personnummer(rnd)] = None
    persons = [(number.encode(), citizen_ref(number, key).encode()) for number in numbers]
    shapes = templates(min(2000, n), seed)
    now = datetime.now(UTC)
    revocable: list[tuple[bytes, str]] = []
    certificates_of: list[int] = [0] * len(persons)
    chunk: list[tuple[bytes, bytes]] = []
    for i in range(n):
        person = rnd.randrange(len(persons))
        pnr, ref = persons[person]
        cert_id = f"b{i:012d}-{seed}"
        shape, counted = shapes[i % len(shapes)]
        value = (
            shape.replace(EVENT_ID.encode(), str(uuid.uuid4()).encode())
            .replace(CERT_ID.encode(), cert_id.encode().ljust(len(CERT_ID), b"x"))
            .replace(PNR.encode(), pnr)
            .replace(REF.encode(), ref)
        )
        chunk.append((ref, value))
        certificates_of[person] += counted
        if i % 100 == 50:
            revocable.append((ref, cert_id.ljust(len(CERT_ID), "x")))
            certificates_of[person] -= counted
        if len(chunk) >= 20_000:
            yield chunk
            chunk = []
    for ref, cert_id in revocable:
        revoked = CertificateRevoked(citizen_ref=ref.decode(), certificate_id=cert_id, certificate_type="LISJP",
                                     revoked_at=now)  # fmt: skip
        chunk.append((ref, encode(new_envelope(revoked, source="bench", time=now, correlation_id="bench"))))
    withdrawn = rnd.sample(range(len(persons)), min(20, len(persons)))
    for person in withdrawn:
        ref = persons[person][1]
        event = CitizenDataWithdrawn(citizen_ref=ref.decode(), at=now)
        chunk.append((ref, encode(new_envelope(event, source="bench", time=now, correlation_id="bench"))))
    yield chunk
    expected.released = n
    expected.events = n + len(revocable) + len(withdrawn)
    expected.facts = sum(certificates_of) - sum(certificates_of[p] for p in withdrawn)


async def produce(settings: StatsSettings, chunks: Iterable[list[tuple[bytes, bytes]]]) -> dict[TopicPartition, int]:
    """Produce in batches; returns the end offset per partition."""
    topic = settings.topic(CONSENT_RELEASED.name)
    producer = make_producer(settings, client_id="bench")
    producer._max_batch_size = 512 * 1024
    await producer.start()
    ends: dict[TopicPartition, int] = defaultdict(int)
    try:
        for events in chunks:
            futures = [await producer.send(topic, value=v, key=k) for k, v in events]
            for metadata in await asyncio.gather(*futures):
                tp = TopicPartition(topic, metadata.partition)
                ends[tp] = max(ends[tp], metadata.offset + 1)
    finally:
        await producer.stop()
    return dict(ends)


async def baseline(settings: StatsSettings, total: int) -> float:
    """Events/s of a plain aiokafka consumer reading the topic from offset 0 to its end."""
    consumer = AIOKafkaConsumer(
        settings.topic(CONSENT_RELEASED.name),
        **client_options(settings),
        group_id=f"{settings.topic_prefix}baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def group_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    committed = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in committed.items()}


def start_stats(settings: StatsSettings, port: int) -> ServiceProcess:
    env = {
        "STATS_DB_SCHEMA": settings.db_schema,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "LOG_LEVEL": "WARNING",
        "STATS_RATE_LIMIT": "1000000/minute",  # the benchmark measures latency, not the limit
    }
    process = ServiceProcess("minaintyg-stats", env, port_env="STATS_PORT", port=port)
    process.spawn()
    return process


def last_month_key(today: date) -> str:
    """The latest closed month (under the default policy: ended more than `close_after_days` ago)."""
    days = StatsSettings().close_after_days
    month = parse_period(f"{today:%Y-%m}")
    while not month.closed(today, days):
        month = Period(month.first_month - 1, month.first_month - 1)
    return month.key


async def report_latencies(url: str, samples: int) -> dict[str, list[float]]:
    """Milliseconds per request for every report, alternating this year's national table and last month's county
    01 table (the first request of each is computed and stored, the rest are served as stored)."""
    out: dict[str, list[float]] = {}
    closed = last_month_key(datetime.now(UTC).date())
    headers = {"Authorization": f"Bearer {DEV_ANALYST_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        for name in REPORTS:
            times = []
            for i in range(samples):
                params = {"county": "01", "period": closed} if i % 2 else {}
                started = time.perf_counter()
                response = await client.get(f"/v1/reports/{name}", params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            out[name] = times
    return out


async def compute_latencies(settings: StatsSettings, samples: int) -> dict[str, list[float]]:
    """Milliseconds to compute every report from the database (no cache, no HTTP)."""
    pool = await create_pool(settings.database_url, settings.db_schema, application="bench", max_size=2)
    population = load_population()
    out: dict[str, list[float]] = {}
    try:
        for name, spec in REPORTS.items():
            times = []
            for i in range(samples):
                now = datetime.now(UTC)
                started = time.perf_counter()
                await compute(pool, spec, default_period(now.date()), "01" if i % 2 else None, now, population,
                              preliminary=True)  # fmt: skip
                times.append((time.perf_counter() - started) * 1000)
            out[name] = times
    finally:
        await pool.close()
    return out


def inner_cells(view: ReportView) -> list[tuple[int, int, int | None]]:
    """(row, column, figure) of every count cell of a report, totals included (not inhabitants or rates)."""
    out = []
    for i, row in enumerate(view.rows):
        for j, value in enumerate(row[1:], start=1):
            if view.columns[j] in ("Invånare", "Sjukfall per 1 000 invånare"):
                continue
            assert value is None or isinstance(value, int)
            out.append((i, j, value))
    return out


def grand_total(view: ReportView) -> int:
    """The table's grand total (in "per month": the sum of the months' totals)."""
    if view.report == "cases-per-month":
        values = [row[-1] for row in view.rows]
    else:
        values = [view.rows[-1][3 if view.report == "county" else -1]]
    total = 0
    for value in values:
        assert value is None or isinstance(value, int)
        total += value or 0
    return total


async def utility(settings: StatsSettings) -> None:
    """The error of the published national figures against the true ones, per report, last month and this year."""
    pool = await create_pool(settings.database_url, settings.db_schema, application="bench", max_size=2)
    population = load_population()
    now = datetime.now(UTC)
    periods = [parse_period(last_month_key(now.date())), default_period(now.date())]
    print("  utility of the protection: published national figures against the true ones (cells and totals)")
    print(f"    {'report':<20} {'period':<8} {'cells':>6} {'shown':>6} {'MAE shown':>10} {'max':>4} "
          f"{'hidden ≥5':>10} {'total true':>11} {'published':>10} {'rel. err.':>9}")  # fmt: skip
    try:
        for period in periods:
            for name, spec in REPORTS.items():
                published = await compute(pool, spec, period, None, now, population, preliminary=False)
                true = await compute(pool, spec, period, None, now, population, preliminary=False, exact=True)
                pairs = [(p[2], t[2]) for p, t in zip(inner_cells(published), inner_cells(true), strict=True)]
                shown = [(p, t or 0) for p, t in pairs if p is not None]
                mae = sum(abs(p - t) for p, t in shown) / max(len(shown), 1)
                worst = max((abs(p - t) for p, t in shown), default=0)
                lost = sum(1 for p, t in pairs if p is None and (t or 0) >= 5)
                total_true, total_pub = grand_total(true), grand_total(published)
                rel = abs(total_pub - total_true) / total_true if total_true else 0.0
                print(f"    {name:<20} {period.key:<8} {len(pairs):6d} {len(shown):6d} {mae:10.2f} {worst:4d} "
                      f"{lost:10d} {total_true:11,d} {total_pub:10,d} {rel:9.2%}")  # fmt: skip
    finally:
        await pool.close()


async def aggregates(settings: StatsSettings) -> list[tuple[object, ...]]:
    async with connect(settings.database_url, settings.db_schema) as conn:
        rows = await conn.fetch("SELECT * FROM aggregates WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7")
        cases = await conn.fetchval("SELECT count(*) FROM cases")
        return [*map(tuple, rows), ("cases", cases)]


async def fact_counts(settings: StatsSettings) -> tuple[int, int]:
    """Facts stored, and certificates counted in the "certificates per type" aggregates."""
    async with connect(settings.database_url, settings.db_schema) as conn:
        stored = await conn.fetchval("SELECT count(*) FROM facts")
        counted = await conn.fetchval("SELECT coalesce(sum(n), 0) FROM aggregates WHERE dimension = 'type'")
        return int(stored), int(counted)


async def drop(settings: StatsSettings) -> None:
    await drop_schema(settings.database_url, settings.db_schema)


async def run(n: int, samples: int, seed: int, keep: bool) -> None:
    print(machine())
    settings = StatsSettings().model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.", "db_schema": f"bench_stats_{uuid.uuid4().hex[:8]}"}
    )
    await ensure_topics(settings, [CONSENT_RELEASED])
    bench_started = started = time.perf_counter()
    expected = Expected()
    ends = await produce(settings, generate(settings, n, seed, expected))
    produced = time.perf_counter() - started
    total = sum(ends.values())
    assert total == expected.events, (total, expected.events)
    print(f"stats benchmark: {n:,} released certificates + {total - n:,} revocations/withdrawals = {total:,} events")
    print(f"  generated and produced in {produced:.1f} s ({total / produced:,.0f}/s)")
    base = await baseline(settings, total)
    print(f"  baseline: plain aiokafka consume of the topic          {base:10,.0f} events/s")

    port = free_port()
    process = start_stats(settings, port)
    try:
        started = time.perf_counter()
        await process.ready(within=120)
        group = settings.topic_prefix + CONSUMER_NAME
        cpu = psutil.Process(process.pid)
        first_commit: tuple[float, int, float] | None = None  # time, events committed, process CPU seconds
        # One admin client for the whole wait (a new one per poll cost the benchmark more CPU than the poll).
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            while True:
                committed = await group_offsets(admin, group)
                done = sum(min(committed.get(tp, 0), end) for tp, end in ends.items())
                if first_commit is None and done:
                    first_commit = (time.perf_counter(), done, sum(cpu.cpu_times()[:2]))
                if done >= total:
                    break
                await asyncio.sleep(0.5)
        finally:
            await admin.close()
        finished, cpu_end = time.perf_counter(), sum(cpu.cpu_times()[:2])
        ingest_s = finished - started
        assert first_commit is not None
        steady = (total - first_commit[1]) / (finished - first_commit[0])
        cpu_us = (cpu_end - first_commit[2]) / (total - first_commit[1]) * 1e6
        print(
            f"  ingest: one stats process, start to end of topic     {total / ingest_s:10,.0f} events/s "
            f"({ingest_s:.1f} s incl. start-up and group join)"
        )
        print(
            f"  ingest: from its first commit to the end             {steady:10,.0f} events/s "
            f"(target ≥ 5,000/s; ratio to baseline {steady / base:.3f})"
        )
        print(
            f"  stats process CPU per event                          {cpu_us:10.0f} µs     "
            f"(one core's ceiling: {1e6 / cpu_us:,.0f}/s)"
        )
        served = await report_latencies(f"http://127.0.0.1:{port}", samples)
        computed = await compute_latencies(settings, samples)
        print(f"  reports, {samples} requests each (this year national / last month county 01 alternating), protection "
              "on, ms (target p99 ≤ 100):")  # fmt: skip
        print(f"    {'report':<20} {'HTTP (published) p50':>20} {'p99':>7}   {'computed p50':>24} {'p99':>7}")
        for name in REPORTS:
            s, c = served[name], computed[name]
            row = f"{median(s):20.1f} {percentile(s, 99):7.1f}   {median(c):24.1f} {percentile(c, 99):7.1f}"
            print(f"    {name:<20} {row}")
        print(f"    worst p99: HTTP {max(percentile(t, 99) for t in served.values()):.1f} ms, computed "
              f"{max(percentile(t, 99) for t in computed.values()):.1f} ms")  # fmt: skip
        await utility(settings)
    finally:
        process.stop(timeout=60)
    incremental = await aggregates(settings)
    stored, counted = await fact_counts(settings)
    print(f"  counts: events in {total:,}; facts expected {expected.facts:,}, stored {stored:,} "
          f"(lost {max(expected.facts - stored, 0):,}, extra {max(stored - expected.facts, 0):,}); "
          f"certificates counted in the aggregates {counted:,} (duplicated {counted - stored:,})")  # fmt: skip
    started = time.perf_counter()
    own = psutil.Process()
    cpu_before = sum(own.cpu_times()[:2])
    result = await rebuild(settings, progress=sys.stderr.isatty())
    rebuild_s = time.perf_counter() - started
    rebuild_cpu_us = (sum(own.cpu_times()[:2]) - cpu_before) / max(result.applied, 1) * 1e6
    same = await aggregates(settings) == incremental
    print(f"  rebuild from offset 0 (one process)                  {total / rebuild_s:10,.0f} events/s "
          f"({rebuild_s:.1f} s for {result.applied:,} events; target 1,000,000 in ≤ 300 s); "
          f"identical to incremental: {'yes' if same else 'NO'}; {rebuild_cpu_us:.0f} µs CPU/event")  # fmt: skip
    print(f"  whole benchmark {time.perf_counter() - bench_started:.0f} s")
    if not keep:
        await drop(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="released certificates (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 certificates, 50 requests per report")
    parser.add_argument("--samples", type=int, default=200, help="requests per report")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    size, samples = (20_000, 50) if args.quick else (args.size, args.samples)
    asyncio.run(run(size, samples, args.seed, args.keep))


if __name__ == "__main__":
    main()
