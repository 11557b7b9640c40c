"""`make bench`: intake accepting and publishing certificates, against raw aiokafka produce on the same broker.

Per run, with a fresh schema and topic prefix: (1) baselines: the same events produced straight to Kafka with
aiokafka (acks=all, idempotent), and raw PostgreSQL, a row the size of what intake stores per certificate
committed per request at the paced rate (the storage's own p50/p99, beside which intake's latency is read),
(2) sustained throughput: N certificates posted with bounded concurrency to one intake process, timed until the
last event is on the topic, (3) latency: certificates at a paced 100/s, p50/p99 of the HTTP accept, (4) intake's
peak RSS. Figures are medians over the runs; counts in/out/lost/duplicated are
checked for every run.

Two paths, each through an intake process of its own (fresh schema and topic prefix), on the same certificates
(the simulator's, those that keep the published rules) and printed side by side with the raw produce (`--paths`):
`json`, POST /v1/certificates with the platform's bearer token over plain HTTP, and `riv`, RegisterCertificate v3
over mutual TLS with the platform's client certificate of the development CA (deploy/local/devca), the messages
built before the clock starts, over keep-alive connections (one TLS handshake per connection, not per request);
a RIV-TA answer counts as accepted when its resultCode is OK. After both phases the topic is read back until it is
quiet: every accepted certificate exactly once (lost, duplicated, foreign = 0).


`--spans`: intake with spans off against spans on, alternating, `--runs` of each: on, every trace is recorded
(`--ratio`, default 1.0) and exported as in production, OTLP over HTTP with the batch span processor, to a local
sink process (bench/otlp_sink.py) that counts and discards them; medians, on/off ratios and counts are printed."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import OtlpSink, compare, machine, median, percentile
from bench.loadclient import Classify, closed_loop, on_schedule, open_loop, post_request
from deploy.local import devca
from deploy.simulators.platform import riv as platform_riv
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateIssued
from schemas.riv import namespaces as ns
from schemas.riv import rules as riv_rules
from schemas.riv import soap
from schemas.riv import xml as riv_xml
from schemas.riv.wsdl import REGISTER_CERTIFICATE
from schemas.topics import INTAKE_CERTIFICATES
from services.intake import repo as intake_repo
from services.kit.citizen import citizen_ref
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.kit.swedish import swedish_date
from tests.harness import ServiceProcess, connect, drop_schema, free_port

AUTH = {"Authorization": "Bearer dev-platform-secret", "Content-Type": "application/json"}


PATHS = ("json", "riv")
LABELS = {"json": "JSON", "riv": "RIV-TA mTLS"}
RIV_URL_PATH = REGISTER_CERTIFICATE.path


@dataclass
class PathResult:
    """One path (JSON over plain HTTP, or RegisterCertificate v3 over mutual TLS) through its own intake process."""

    sustained_per_s: float
    accept_only_per_s: float
    p50_ms: float
    p99_ms: float
    paced_rate: float
    rss_mb: float
    cpu_per_certificate_us: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class RunResult:
    baseline_per_s: float
    paths: dict[str, PathResult] = field(default_factory=dict)
    postgres_p50_ms: float = 0.0  # raw PostgreSQL: a certificate-sized commit at the paced rate
    postgres_p99_ms: float = 0.0

    # The JSON path's figures, as `--spans` compares them.
    @property
    def sustained_per_s(self) -> float:
        return self.paths["json"].sustained_per_s

    @property
    def accept_only_per_s(self) -> float:
        return self.paths["json"].accept_only_per_s

    @property
    def cpu_per_certificate_us(self) -> float:
        return self.paths["json"].cpu_per_certificate_us

    @property
    def p99_ms(self) -> float:
        return self.paths["json"].p99_ms

    @property
    def counts(self) -> dict[str, int]:
        return self.paths["json"].counts


def issued_events(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The (key, value) of the `certificate.issued` event intake publishes for each certificate (JSON)."""
    now = datetime.now(UTC)
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    messages = []
    for body in bodies:
        cert = CERTIFICATE_ADAPTER.validate_json(body)
        ref = citizen_ref(cert.patient.personnummer, key)
        data = CertificateIssued(citizen_ref=ref, certificate=cert, test_patient=False, received_at=now)
        messages.append((ref.encode(), encode(new_envelope(data, source="bench", time=now, correlation_id="b"))))
    return messages


async def baseline(settings: ServiceSettings, bodies: list[bytes]) -> float:
    """Raw aiokafka: the events intake would publish, produced directly (acks=all, idempotent)."""
    topic = settings.topic("bench.baseline.v1")
    from schemas.topics import TopicSpec

    await ensure_topics(settings, [TopicSpec("bench.baseline.v1", "citizen_ref")])
    messages = issued_events(bodies)
    producer = make_producer(settings, client_id="bench-baseline")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def postgres_baseline(
    settings: ServiceSettings, rows: list[tuple[str, bytes, bytes]], rate: float
) -> list[float]:
    """Raw asyncpg at the paced rate, scheduled as `open_loop` schedules requests (`on_schedule`): per request one
    row the size of what intake stores for a certificate (the message as received, the normalised certificate, the
    outbox event) inserted and committed from a pool, on a fresh schema. Latencies (s) from the scheduled time:
    the storage's own tail, beside which intake's p99 is read (a commit waits for the WAL to reach the disk)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    async with connect(settings.database_url, "public") as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE {schema}.rows (id bigserial PRIMARY KEY, original text, normalised jsonb, event bytea)"
        )
    pool = await asyncpg.create_pool(settings.database_url, min_size=4, max_size=20)
    latencies: list[float] = []
    statement = f"INSERT INTO {schema}.rows (original, normalised, event) VALUES ($1, $2::jsonb, $3)"  # noqa: S608

    async def one(i: int, scheduled: float) -> None:
        original, normalised, event = rows[i]
        await pool.execute(statement, original, normalised.decode(), event)
        latencies.append(time.perf_counter() - scheduled)

    try:
        # What the phases before wrote (the Kafka baseline, an earlier path's burst) is written out first: otherwise
        # the kernel's writeback of it, due 30 s after it was written, lands in the paced window and every commit
        # waits behind it (a p99 of the benchmark's own making, not of the steady 100/s). Intake's paced phase
        # starts the same way.
        await asyncio.to_thread(os.sync)
        await on_schedule(len(rows), rate, one)
    finally:
        await pool.close()
        await drop_schema(settings.database_url, schema)
    return latencies


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


async def topic_ids(settings: ServiceSettings, expected: int, within: float = 120, settle: float = 0) -> list[str]:
    """Certificate ids of every event on intake's topic, once `expected` are there (or the deadline passes); with
    `settle`, reading on until nothing more has arrived for that many seconds (so late duplicates are seen)."""
    topic = settings.topic(INTAKE_CERTIFICATES.name)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
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
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if len(ids) >= expected and time.monotonic() - quiet_since >= settle:
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    data = decode(record.value).data
                    assert isinstance(data, CertificateIssued)
                    ids.append(data.certificate.id)
                    quiet_since = time.monotonic()
        return ids
    finally:
        await consumer.stop()


def valid_certificates(factory: CertificateFactory, n: int) -> list[dict[str, Any]]:
    """`n` simulator certificates that keep the published rules (schemas/riv/rules), so that every one is accepted
    on both paths (the generator sometimes breaks a rule, e.g. on question 33); both paths get the same ones."""
    today = swedish_date(datetime.now(UTC))
    out: list[dict[str, Any]] = []
    while len(out) < n:
        certificate = factory.certificate()
        if not riv_rules.check(platform_riv.to_intyg(certificate), today):
            out.append(certificate)
    return out


def riv_request(port: int, certificate: dict[str, Any]) -> bytes:
    """A RegisterCertificate v3 request, bytes on the wire, as the platform sends it."""
    message = platform_riv.register_message(platform_riv.to_intyg(certificate))
    headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": REGISTER_CERTIFICATE.soap_action}
    return post_request("127.0.0.1", port, RIV_URL_PATH, message, headers)


def result_code(status: int, body: bytes) -> int | str:
    """A RIV-TA answer counted by its resultCode (OK, INFO, ERROR:<errorId>), or FAULT:<HTTP status>."""
    try:
        found = next(riv_xml.parse(body).iter(f"{{{ns.CORE}}}resultCode"), None)
    except riv_xml.InvalidXml:
        found = None
    result = None if found is None else found.getparent()
    if result is None:
        return f"FAULT:{status}"
    read = riv_xml.read_result(result)
    return read.result_code if read.error_id is None else f"{read.result_code}:{read.error_id}"


def riv_env(tls: Path, port: int) -> dict[str, str]:
    return {
        "INTAKE_RIV_PORT": str(port),
        "INTAKE_RIV_TLS_CERT_FILE": str(tls / "intake.pem"),
        "INTAKE_RIV_TLS_KEY_FILE": str(tls / "intake-key.pem"),
        "INTAKE_RIV_CLIENT_CA_FILE": str(tls / "ca.pem"),
    }


async def measure_path(
    settings: ServiceSettings,
    path: str,
    certificates: list[dict[str, Any]],
    paced_certificates: list[dict[str, Any]],
    paced_rate: float,
    concurrency: int,
    tls_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> PathResult:
    """One intake process with a fresh schema and topic prefix: `certificates` as fast as `concurrency` connections
    allow, timed until the last event is on the topic; then `paced_certificates` at `paced_rate`; then the topic is
    read back (settling) and compared with what intake accepted."""
    run_settings = settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    port = free_port()  # not a fixed port: other benchmarks may run on this machine
    env = dict(extra_env or {})
    tls: ssl.SSLContext | None = None
    accepted_as: int | str
    classify: Classify
    if path == "riv":
        riv_port = free_port()
        env.update(riv_env(tls_dir, riv_port))
        tls = platform_riv.client_context(tls_dir)
        target_port, accepted_as, classify = riv_port, "OK", result_code
        requests = [riv_request(riv_port, c) for c in certificates]  # built before the clock starts
        paced_requests = [riv_request(riv_port, c) for c in paced_certificates]
    else:
        target_port, accepted_as, classify = port, 201, _status
        requests = [post_request("127.0.0.1", port, "/v1/certificates", orjson.dumps(c), AUTH) for c in certificates]
        paced_requests = [
            post_request("127.0.0.1", port, "/v1/certificates", orjson.dumps(c), AUTH) for c in paced_certificates
        ]
    process = start_intake(run_settings, schema, port, env)
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
        cpu = psutil.Process(process.pid)
        cpu_before = sum(cpu.cpu_times()[:2])
        started = time.perf_counter()
        statuses, accept_seconds = await closed_loop(
            "127.0.0.1", target_port, requests, concurrency, tls=tls, classify=classify
        )
        accepted = statuses[accepted_as]
        await topic_ids(run_settings, accepted)  # the sustained phase ends when the last event is on the topic
        published_at = time.perf_counter()
        cpu_per_certificate_us = (sum(cpu.cpu_times()[:2]) - cpu_before) / len(requests) * 1e6
        await asyncio.to_thread(os.sync)  # the burst's dirty pages written out first (see `postgres_baseline`)
        paced_statuses, latencies = await open_loop(
            "127.0.0.1", target_port, paced_requests, paced_rate, tls=tls, classify=classify
        )
        sampler.cancel()
        paced_accepted = paced_statuses[accepted_as]
        sent = {c["id"] for c in certificates} | {c["id"] for c in paced_certificates}
        all_ids = await topic_ids(run_settings, accepted + paced_accepted, settle=2.0)
        counts = Counter(all_ids)
        outcomes = statuses + paced_statuses
        return PathResult(
            sustained_per_s=accepted / (published_at - started),
            accept_only_per_s=accepted / accept_seconds,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            paced_rate=paced_rate,
            rss_mb=peak_rss,
            cpu_per_certificate_us=cpu_per_certificate_us,
            counts={
                "in": len(requests) + len(paced_requests),
                "accepted": accepted + paced_accepted,
                "out": len(all_ids),
                "lost": accepted + paced_accepted - len(counts),
                "duplicated": sum(c - 1 for c in counts.values()),
                "foreign": len(set(counts) - sent),
                "errors": sum(v for k, v in outcomes.items() if k != accepted_as),
            },
        )
    finally:
        process.stop(timeout=30)
        await drop_schema(settings.database_url, schema)


def _status(status: int, _body: bytes) -> int | str:
    return status


async def one_run(
    settings: ServiceSettings,
    n: int,
    paced_seconds: int,
    concurrency: int,
    seed: int,
    extra_env: dict[str, str] | None = None,
    paths: Sequence[str] = ("json",),
) -> RunResult:
    """The raw-Kafka baseline, then each path in turn through its own intake process, on the same certificates."""
    factory = CertificateFactory(seed=seed)
    paced_rate = 100.0
    certificates = valid_certificates(factory, n)
    paced = valid_certificates(factory, int(paced_rate * paced_seconds))
    base_rate = await baseline(
        settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."}),
        [orjson.dumps(c) for c in certificates],
    )
    documents = [orjson.dumps(c) for c in paced]
    messages = [platform_riv.register_message(platform_riv.to_intyg(c)).decode() for c in paced]
    rows = [(m, d, event) for m, d, (_, event) in zip(messages, documents, issued_events(documents), strict=True)]
    storage = await postgres_baseline(settings, rows, paced_rate)
    result = RunResult(
        baseline_per_s=base_rate,
        postgres_p50_ms=percentile(storage, 50) * 1000,
        postgres_p99_ms=percentile(storage, 99) * 1000,
    )
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        tls_dir = devca.ensure(Path(tmp) / "tls")
        for path in paths:
            result.paths[path] = await measure_path(
                settings, path, certificates, paced, paced_rate, concurrency, tls_dir, extra_env
            )
    return result


def _path_line(label: str, r: PathResult) -> str:
    return (
        f"{label} sustained {r.sustained_per_s:,.0f}/s (accept {r.accept_only_per_s:,.0f}/s, "
        f"{r.cpu_per_certificate_us:.0f} µs intake CPU each) · p50 {r.p50_ms:.1f} ms · p99 {r.p99_ms:.1f} ms · "
        f"peak RSS {r.rss_mb:.0f} MB · {r.counts}"
    )


async def main_async(runs: int, n: int, paced_seconds: int, concurrency: int, paths: Sequence[str] = PATHS) -> None:
    settings = ServiceSettings()
    print(machine())
    print(f"intake benchmark: {runs} runs · paths {', '.join(LABELS[p] for p in paths)} (each its own intake "
          f"process, the same certificates) · {n} certificates each at concurrency {concurrency} · "
          f"{paced_seconds} s paced at 100/s")  # fmt: skip
    results = []
    for i in range(runs):
        r = await one_run(settings, n, paced_seconds, concurrency, seed=1000 + i, paths=paths)
        results.append(r)
        print(
            f"  run {i + 1}: baseline raw aiokafka {r.baseline_per_s:,.0f}/s · raw PostgreSQL commit at 100/s "
            f"p50 {r.postgres_p50_ms:.1f} ms, p99 {r.postgres_p99_ms:.1f} ms",
            flush=True,
        )
        for p in paths:
            print(f"    {_path_line(LABELS[p], r.paths[p])}", flush=True)

    def col(figure: Callable[[PathResult], float]) -> list[float]:
        return [median([figure(r.paths[p]) for r in results]) for p in paths]

    base = median([r.baseline_per_s for r in results])
    postgres_p50 = median([r.postgres_p50_ms for r in results])
    postgres_p99 = median([r.postgres_p99_ms for r in results])
    print(f"medians over {runs} runs (load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    header = f"  {'':40}{'raw Kafka':>12}{'raw PG':>10}" + "".join(f"{LABELS[p]:>14}" for p in paths)
    print(header)
    rows: tuple[tuple[str, str, Callable[[PathResult], float], str], ...] = (
        ("sustained accept+publish (/s)", "{:,.0f}", lambda r: r.sustained_per_s, "target ≥ 500"),
        ("accept only (/s)", "{:,.0f}", lambda r: r.accept_only_per_s, ""),
        ("p50 accept at 100/s (ms)", "{:.1f}", lambda r: r.p50_ms, ""),
        ("p99 accept at 100/s (ms)", "{:.1f}", lambda r: r.p99_ms, "target ≤ 50"),
        ("intake CPU per certificate (µs)", "{:,.0f}", lambda r: r.cpu_per_certificate_us, ""),
        ("peak RSS, max over runs (MB)", "{:.0f}", lambda r: r.rss_mb, "target ≤ 150"),
    )
    for label, form, figure, target in rows:
        values = col(figure) if "max" not in label else [max(figure(r.paths[p]) for r in results) for p in paths]
        first = f"{base:,.0f}" if label.startswith("sustained") else "—"
        storage = {"p50": postgres_p50, "p99": postgres_p99}.get(label[:3])
        second = "—" if storage is None else f"{storage:.1f}"
        cells = "".join(f"{form.format(v):>14}" for v in values)
        print(f"  {label:40}{first:>12}{second:>10}{cells}   {target}".rstrip())
    print(f"  {'ratio to raw Kafka (sustained)':40}{'1.000':>12}{'':>10}" + "".join(f"{v / base:>14.3f}" for v in col(
        lambda r: r.sustained_per_s)))  # fmt: skip
    bad = False
    for p in paths:
        totals = Counter[str]()
        for r in results:
            totals.update(r.paths[p].counts)
        print(f"  {LABELS[p]} counts over all runs: {dict(totals)}")
        bad = bad or bool(totals["lost"] or totals["duplicated"] or totals["foreign"])
    if bad:
        sys.exit(1)


def _line(r: RunResult) -> str:
    return f"baseline {r.baseline_per_s:,.0f}/s · " + _path_line("intake", r.paths["json"])


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
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help="comma-separated, of json (POST /v1/certificates) and riv (RegisterCertificate v3 over mutual TLS)",
    )
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in PATHS for p in paths):
        parser.error(f"--paths: a comma-separated list of {', '.join(PATHS)}")
    if args.spans:
        asyncio.run(spans_async(args.runs, args.count, args.paced_seconds, args.concurrency, args.ratio))
    else:
        asyncio.run(main_async(args.runs, args.count, args.paced_seconds, args.concurrency, paths))


if __name__ == "__main__":
    main()
