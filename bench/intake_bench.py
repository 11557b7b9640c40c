"""`make bench`: intake accepting and publishing certificates, against raw aiokafka produce on the same broker.

Per run, with a fresh schema and topic prefix: (1) baseline: the same events produced straight to Kafka with
aiokafka (acks=all, idempotent), (2) sustained throughput: N certificates posted with bounded concurrency to one
intake process, timed until the last event is on the topic, (3) latency: certificates at a paced 100/s, p50/p99
of the HTTP accept, (4) intake's peak RSS. Figures are medians over the runs; counts in/out/lost/duplicated are
checked for every run.


`--spans`: intake with spans off against spans on, alternating, `--runs` of each: on, every trace is recorded
(`--ratio`, default 1.0) and exported as in production, OTLP over HTTP with the batch span processor, to a local
sink process (bench/otlp_sink.py) that counts and discards them; medians, on/off ratios and counts are printed."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import OtlpSink, compare, machine, median, percentile
from bench.loadclient import closed_loop, open_loop, post_request
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateIssued
from schemas.topics import INTAKE_CERTIFICATES
from services.intake import repo as intake_repo
from services.kit.citizen import citizen_ref
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from tests.harness import ServiceProcess, connect, drop_schema, free_port

AUTH = {"Authorization": "Bearer dev-platform-secret", "Content-Type": "application/json"}


@dataclass
class RunResult:
    baseline_per_s: float
    sustained_per_s: float
    accept_only_per_s: float
    p50_ms: float
    p99_ms: float
    paced_rate: float
    rss_mb: float
    cpu_per_certificate_us: float
    counts: dict[str, int] = field(default_factory=dict)


async def baseline(settings: ServiceSettings, bodies: list[bytes]) -> float:
    """Raw aiokafka: the events intake would publish, produced directly (acks=all, idempotent)."""
    topic = settings.topic("bench.baseline.v1")
    from schemas.topics import TopicSpec

    await ensure_topics(settings, [TopicSpec("bench.baseline.v1", "citizen_ref")])
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    messages = []
    for body in bodies:
        cert = CERTIFICATE_ADAPTER.validate_json(body)
        ref = citizen_ref(cert.patient.personnummer, key)
        data = CertificateIssued(citizen_ref=ref, certificate=cert, test_patient=False, received_at=now)
        messages.append((ref.encode(), encode(new_envelope(data, source="bench", time=now, correlation_id="b"))))
    producer = make_producer(settings, client_id="bench-baseline")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def start_intake(
    settings: ServiceSettings, schema: str, port: int, extra_env: dict[str, str] | None = None
) -> ServiceProcess:
    env = {
        "INTAKE_DB_SCHEMA": schema,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "LOG_LEVEL": "WARNING",
        "INTAKE_RATE_LIMIT": "1000000/second",  # throughput, not the abuse limit
    }
    env.update(extra_env or {})
    process = ServiceProcess("minaintyg-intake", env, port_env="INTAKE_PORT", port=port)
    process.spawn()
    return process


async def connect_units(settings: ServiceSettings, schema: str) -> None:
    async with connect(settings.database_url, schema) as conn:
        await intake_repo.connect_care_units(conn, [(u.hsa_id, u.name, u.county.value) for u in CARE_UNITS])


async def topic_ids(settings: ServiceSettings, expected: int, within: float = 120) -> list[str]:
    """Certificate ids of every event on intake's topic, once `expected` are there (or the deadline passes)."""
    topic = settings.topic(INTAKE_CERTIFICATES.name)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    ids: list[str] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        assignment = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        deadline = time.monotonic() + within
        while len(ids) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    data = decode(record.value).data
                    assert isinstance(data, CertificateIssued)
                    ids.append(data.certificate.id)
        return ids
    finally:
        await consumer.stop()


async def one_run(
    settings: ServiceSettings,
    n: int,
    paced_seconds: int,
    concurrency: int,
    seed: int,
    extra_env: dict[str, str] | None = None,
) -> RunResult:
    factory = CertificateFactory(seed=seed)
    bodies = [orjson.dumps(factory.certificate()) for _ in range(n)]
    paced_rate = 100.0
    paced = [orjson.dumps(factory.certificate()) for _ in range(int(paced_rate * paced_seconds))]
    run_settings = settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    base_rate = await baseline(run_settings, bodies)

    port = free_port()  # not a fixed port: other benchmarks may run on this machine
    process = start_intake(run_settings, schema, port, extra_env)
    peak_rss = 0.0

    async def sample_rss() -> None:
        nonlocal peak_rss
        proc = psutil.Process(process.pid)
        while True:
            peak_rss = max(peak_rss, proc.memory_info().rss / 2**20)
            await asyncio.sleep(0.2)

    try:
        await process.ready()
        await connect_units(run_settings, schema)
        sampler = asyncio.create_task(sample_rss())
        requests = [post_request("127.0.0.1", port, "/v1/certificates", b, AUTH) for b in bodies]
        cpu = psutil.Process(process.pid)
        cpu_before = sum(cpu.cpu_times()[:2])
        started = time.perf_counter()
        statuses, accept_seconds = await closed_loop("127.0.0.1", port, requests, concurrency)
        ids = await topic_ids(run_settings, statuses[201])
        published_at = time.perf_counter()
        cpu_per_certificate_us = (sum(cpu.cpu_times()[:2]) - cpu_before) / n * 1e6
        paced_requests = [post_request("127.0.0.1", port, "/v1/certificates", b, AUTH) for b in paced]
        paced_statuses, latencies = await open_loop("127.0.0.1", port, paced_requests, paced_rate)
        sampler.cancel()
        counts = Counter(ids)
        result = RunResult(
            baseline_per_s=base_rate,
            sustained_per_s=statuses[201] / (published_at - started),
            accept_only_per_s=statuses[201] / accept_seconds,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            paced_rate=paced_rate,
            rss_mb=peak_rss,
            cpu_per_certificate_us=cpu_per_certificate_us,
            counts={
                "in": n,
                "accepted": statuses[201],
                "out": len(ids),
                "lost": statuses[201] - len(counts),
                "duplicated": sum(c - 1 for c in counts.values()),
                "errors": sum(v for k, v in (statuses + paced_statuses).items() if k != 201),
            },
        )
    finally:
        process.stop(timeout=30)
        await drop_schema(settings.database_url, schema)
    return result


async def main_async(runs: int, n: int, paced_seconds: int, concurrency: int) -> None:
    settings = ServiceSettings()
    print(machine())
    print(f"intake benchmark: {runs} runs · {n} certificates each at concurrency {concurrency} · "
          f"{paced_seconds} s paced at 100/s")  # fmt: skip
    results = []
    for i in range(runs):
        r = await one_run(settings, n, paced_seconds, concurrency, seed=1000 + i)
        results.append(r)
        print(
            f"  run {i + 1}: baseline {r.baseline_per_s:,.0f}/s · intake sustained {r.sustained_per_s:,.0f}/s "
            f"(accept {r.accept_only_per_s:,.0f}/s, {r.cpu_per_certificate_us:.0f} µs intake CPU each) · "
            f"p50 {r.p50_ms:.1f} ms · p99 {r.p99_ms:.1f} ms · "
            f"peak RSS {r.rss_mb:.0f} MB · {r.counts}"
        )
    sustained = median([r.sustained_per_s for r in results])
    base = median([r.baseline_per_s for r in results])
    p99 = median([r.p99_ms for r in results])
    rss = max(r.rss_mb for r in results)
    print("medians:")
    print(f"  baseline raw aiokafka produce      {base:10,.0f} events/s")
    print(f"  intake sustained accept+publish     {sustained:10,.0f} certificates/s   (target ≥ 500)"
          f"   ratio to baseline {sustained / base:.3f}")  # fmt: skip
    print(f"  intake p50 / p99 accept at 100/s    {median([r.p50_ms for r in results]):7.1f} / {p99:.1f} ms"
          f"   (target p99 ≤ 50 ms)")  # fmt: skip
    print(f"  intake peak RSS (max over runs)     {rss:10.0f} MB   (target ≤ 150)")
    cpu_us = median([r.cpu_per_certificate_us for r in results])
    print(f"  intake CPU per certificate          {cpu_us:10.0f} µs   (one core's ceiling: {1e6 / cpu_us:,.0f}/s)")
    lost = sum(r.counts["lost"] for r in results)
    duplicated = sum(r.counts["duplicated"] for r in results)
    print(f"  counts over all runs: lost {lost} · duplicated {duplicated}")
    if lost or duplicated:
        sys.exit(1)


def _line(r: RunResult) -> str:
    return (
        f"baseline {r.baseline_per_s:,.0f}/s · intake sustained {r.sustained_per_s:,.0f}/s "
        f"(accept {r.accept_only_per_s:,.0f}/s, {r.cpu_per_certificate_us:.0f} µs intake CPU each) · "
        f"p50 {r.p50_ms:.1f} ms · p99 {r.p99_ms:.1f} ms · peak RSS {r.rss_mb:.0f} MB · {r.counts}"
    )


async def spans_async(runs: int, n: int, paced_seconds: int, concurrency: int, ratio: float = 1.0) -> None:
    """Spans off against spans on (every trace recorded, exported with OTLP/HTTP to a local sink), alternating."""
    settings = ServiceSettings()
    print(machine())
    print(
        f"intake spans off/on: {runs} runs each, alternating · {n} certificates each at concurrency "
        f"{concurrency} · {paced_seconds} s paced at 100/s · on: sampler ratio {ratio}, OTLP/HTTP batch export"
    )
    results: dict[bool, list[RunResult]] = {False: [], True: []}
    with OtlpSink(ratio) as sink:
        for i in range(runs):
            for spans in (False, True) if i % 2 == 0 else (True, False):
                before = sink.counts()
                r = await one_run(
                    settings, n, paced_seconds, concurrency, 1000 + i, sink.service_env() if spans else None
                )
                exported = sink.exported_since(before)
                results[spans].append(r)
                print(f"  run {i + 1} spans {'on ' if spans else 'off'}: {_line(r)} · sink {exported}", flush=True)
    off, on = results[False], results[True]
    print(f"medians over {runs} runs each (load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    figures: tuple[tuple[str, str, Callable[[RunResult], float], bool], ...] = (
        ("intake sustained accept+publish", "/s", lambda r: r.sustained_per_s, True),
        ("intake accept only", "/s", lambda r: r.accept_only_per_s, True),
        ("intake CPU per certificate", "µs", lambda r: r.cpu_per_certificate_us, False),
        ("p99 accept at 100/s (ms × 1000)", "µs", lambda r: r.p99_ms * 1000, False),
    )
    for label, unit, figure, higher in figures:
        print(compare(label, unit, [figure(r) for r in off], [figure(r) for r in on], higher_is_better=higher))
    bad = [r.counts for r in off + on if r.counts["lost"] or r.counts["duplicated"] or r.counts["errors"]]
    print(
        f"  counts: in {sum(r.counts['in'] for r in off + on)} · out {sum(r.counts['out'] for r in off + on)} · "
        f"runs with loss, duplicates or errors: {bad or 'none'}"
    )
    if bad:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--paced-seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--spans", action="store_true", help="spans off against spans on, alternating, --runs each (not the baseline)"
    )
    parser.add_argument("--ratio", type=float, default=1.0, help="with --spans: the root sampler ratio")
    args = parser.parse_args()
    if args.spans:
        asyncio.run(spans_async(args.runs, args.count, args.paced_seconds, args.concurrency, args.ratio))
    else:
        asyncio.run(main_async(args.runs, args.count, args.paced_seconds, args.concurrency))


if __name__ == "__main__":
    main()
