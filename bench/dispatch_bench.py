"""`make bench` (dispatch): sends to the Försäkringskassan simulator answering in 50 ms, against raw HTTP.

Per run, with a fresh simulator schema, dispatch schema and topics:
(0) baseline: raw HTTP POSTs of the same certificates to the same simulator, at the same concurrency, no Kafka,
    no database of ours: sends/s and the latency of one call;
(1) throughput: N send requests put on the request topic at once, timed from the first request to the last
    outcome on dispatch.outcomes.v1 (one dispatch process);
(2) latency: requests paced at 20/s, from producing the request to its outcome arriving at a consumer;
(3) recovery: the simulator down for `--outage-seconds` (default 120) while 10,000 sends are requested; the time
    from the end of the outage to the last delivery (ledger), and that each was received exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import psutil
from aiokafka import AIOKafkaConsumer

from bench.common import machine, median, percentile
from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateReleased, DispatchRequested
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS
from services.dispatch import repo
from services.dispatch.app import prepare
from services.dispatch.settings import DispatchSettings
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings
from tests.harness import ServiceProcess, connect, drop_schema, free_port

FK_AUTH = {"Authorization": "Bearer dev-minaintyg-to-fk"}
LATENCY_MS = 50


@dataclass
class Run:
    baseline_per_s: float
    baseline_call_p50_ms: float
    baseline_call_p99_ms: float
    sends_per_s: float
    p50_ms: float
    p99_ms: float
    recovery_s: float | None
    recovery_counts: str
    dispatch_cpu_ms: float  # CPU of the dispatch process per send, in the throughput phase
    fk_cpu_ms: float  # CPU of the simulator per send, same phase
    baseline_fk_cpu_ms: float  # CPU of the simulator per call in the baseline


@dataclass(frozen=True)
class Prepared:
    cert_id: str
    ref: str
    type: str
    released: bytes  # the consent.released envelope
    json: str  # the certificate's JSON (for the baseline)


def certificates(n: int, seed: int, key: str) -> list[Prepared]:
    factory = CertificateFactory(seed=seed, test_patient_share=0.0)
    out = []
    now = datetime.now(UTC)
    for i in range(n):
        person = factory.persons[i % len(factory.persons)]
        cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate("LISJP", person=person))
        ref = citizen_ref(person.personnummer, key)
        data = CertificateReleased(citizen_ref=ref, certificate=cert, test_patient=False, released_at=now)
        envelope = new_envelope(data, source="bench", time=now, correlation_id="b", subject=cert.id)
        out.append(Prepared(cert.id, ref, cert.type, encode(envelope), cert.model_dump_json()))
    return out


def request_bytes(p: Prepared) -> bytes:
    now = datetime.now(UTC)
    data = DispatchRequested(
        idempotency_key=uuid.uuid4(), certificate_id=p.cert_id, recipient_id="FKASSA", citizen_ref=p.ref,
        requested_at=now,
    )  # fmt: skip
    return encode(new_envelope(data, source="bench", time=now, correlation_id="b", subject=p.cert_id))


class Processes:
    """The benchmark's processes (console scripts on the harness), stopped together at the end."""

    def __init__(self) -> None:
        self.started: list[ServiceProcess] = []

    def start(self, command: str, port_env: str, port: int, env: dict[str, str]) -> ServiceProcess:
        process = ServiceProcess(command, {"LOG_LEVEL": "WARNING", **env}, port_env=port_env, port=port)
        process.spawn()
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop(timeout=20)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def produce(settings: DispatchSettings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(settings, client_id="bench")
    await producer.start()
    try:
        futures = [await producer.send(settings.topic(topic), value=v, key=k) for k, v in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def scalar(settings: DispatchSettings, sql: str) -> int:
    async with connect(settings.database_url, settings.db_schema) as conn:
        value: int = await conn.fetchval(sql)
        return value


async def wait_for_count(settings: DispatchSettings, sql: str, n: int, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await scalar(settings, sql) >= n:
            return time.perf_counter()
        await asyncio.sleep(0.05)
    raise SystemExit(f"fewer than {n} rows for {sql!r} within {within:.0f} s")


async def baseline(fk_url: str, certs: list[Prepared], concurrency: int) -> tuple[float, list[float]]:
    """Raw HTTP: `concurrency` workers POST every certificate to the simulator, with the HTTP client dispatch uses
    (aiohttp), so the baseline measures the simulator and not a heavier client."""
    queue = list(certs)
    calls: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(fk_url, headers=FK_AUTH, connector=connector, timeout=timeout) as client:

        async def worker() -> None:
            while queue:
                p = queue.pop()
                body = f'{{"certificate":{p.json},"sender":"bench"}}'.encode()
                key = str(uuid.uuid4())
                started = time.perf_counter()
                for _ in range(5):  # a connection the server closed under load: the same call again, same key
                    try:
                        async with client.post(
                            "/v1/intyg", data=body, headers={"Idempotency-Key": key, "Content-Type": "application/json"}
                        ) as response:
                            status, text = response.status, await response.text()
                        break
                    except aiohttp.ClientConnectionError:
                        errors.append(1)
                else:
                    raise SystemExit("baseline: the simulator kept failing")
                calls.append(time.perf_counter() - started)
                assert status in (200, 201), text

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if errors:
            print(f"  baseline: {len(errors)} call(s) retried after a transport error", flush=True)
        return len(certs) / (time.perf_counter() - begin), calls


async def paced_latencies(settings: DispatchSettings, certs: list[Prepared], rate: float) -> list[float]:
    """Requests at `rate`/s; latency = the outcome's arrival at a consumer minus the request's produce time."""
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    topic = settings.topic(DISPATCH_OUTCOMES.name)
    consumer = AIOKafkaConsumer(topic, **client_options(settings), auto_offset_reset="latest")
    await consumer.start()
    await consumer.getmany(timeout_ms=500)
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # the end offsets looked up now, not while the first outcomes arrive
    producer = make_producer(settings, client_id="bench-paced")
    await producer.start()
    # The topic's metadata fetched now: the first request must not wait for the bench producer's bootstrap.
    await producer.partitions_for(settings.topic(PORTAL_DISPATCH_REQUESTS.name))

    async def collect() -> None:
        while len(arrived) < len(certs):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.perf_counter()
                for r in records:
                    subject = decode(r.value).subject
                    if subject is not None:
                        arrived.setdefault(subject, now)

    collector = asyncio.create_task(collect())
    try:
        begin = time.perf_counter()
        for i, p in enumerate(certs):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[p.cert_id] = time.perf_counter()
            await producer.send(settings.topic(PORTAL_DISPATCH_REQUESTS.name), value=request_bytes(p),
                                key=p.cert_id.encode())  # fmt: skip
        await asyncio.wait_for(collector, timeout=120)
    finally:
        collector.cancel()
        await producer.stop()
        await consumer.stop()
    return [arrived[c] - sent[c] for c in sent if c in arrived]


async def fk_faults(fk_url: str, **faults: object) -> None:
    async with httpx.AsyncClient(base_url=fk_url, timeout=10) as client:
        response = await client.put("/sim/faults", json=faults)
        assert response.status_code == 200, response.text


async def received_per_certificate(fk_url: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    after = 0
    async with httpx.AsyncClient(base_url=fk_url, headers=FK_AUTH, timeout=60) as client:
        while True:
            page = (await client.get("/v1/received", params={"after": after, "limit": 1000})).json()
            if not page["items"]:
                return counts
            for item in page["items"]:
                counts[item["certificate_id"]] = counts.get(item["certificate_id"], 0) + 1
            after = page["next_after"]


async def one_run(args: argparse.Namespace, seed: int, with_recovery: bool) -> Run:
    tag = uuid.uuid4().hex[:8]
    settings = DispatchSettings().model_copy(
        update={"topic_prefix": f"bench{tag}.", "db_schema": f"bench_dispatch_{tag}"}
    )
    fk_schema = f"bench_fk_{tag}"
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    processes = Processes()
    fk_port, dispatch_port = free_port(), free_port()
    fk_url = f"http://127.0.0.1:{fk_port}"
    settings = settings.model_copy(update={"fk_endpoint": fk_url})
    try:
        fk = processes.start("fk-sim", "FKSIM_PORT", fk_port, {"FKSIM_DB_SCHEMA": fk_schema})
        fk_process = psutil.Process(fk.pid)
        await fk.ready()
        await fk_faults(fk_url, latency_ms=LATENCY_MS)

        # (0) baseline
        base_certs = certificates(args.sends, seed + 100, key)
        fk_cpu = cpu_seconds(fk_process)
        base_rate, calls = await baseline(fk_url, base_certs, args.concurrency)
        baseline_fk_cpu = (cpu_seconds(fk_process) - fk_cpu) / len(base_certs)

        # dispatch with the same concurrency toward FK
        await prepare(settings)
        pool = await create_pool(settings.database_url, settings.db_schema, application="bench", max_size=1)
        try:
            fkassa = await repo.recipient(pool, "FKASSA")
            assert fkassa is not None
            await repo.save_recipient(
                pool, fkassa.__class__(**{**fkassa.__dict__, "max_concurrency": args.concurrency})
            )
        finally:
            await pool.close()
        await ensure_topics(settings, [CONSENT_RELEASED, PORTAL_DISPATCH_REQUESTS, DISPATCH_OUTCOMES])
        dispatch_process = processes.start(
            "minaintyg-dispatch",
            "DISPATCH_PORT",
            dispatch_port,
            {
                "DISPATCH_DB_SCHEMA": settings.db_schema,
                "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
                "DISPATCH_FK_ENDPOINT": fk_url,
            },
        )
        await dispatch_process.ready()

        # (1) throughput: the copies are in place first; then every request at once
        certs = certificates(args.sends, seed, key)
        paced = certificates(args.paced, seed + 1, key)
        await produce(settings, CONSENT_RELEASED.name, [(p.ref.encode(), p.released) for p in certs + paced])
        await wait_for_count(settings, "SELECT count(*) FROM certificates", len(certs) + len(paced), 300)
        outcomes_sql = "SELECT count(*) FROM sends WHERE state = 'delivered'"
        requests = [(p.cert_id.encode(), request_bytes(p)) for p in certs]
        dispatch_cpu, fk_cpu = cpu_seconds(psutil.Process(dispatch_process.pid)), cpu_seconds(fk_process)
        begin = time.perf_counter()
        await produce(settings, PORTAL_DISPATCH_REQUESTS.name, requests)
        await wait_for_outcomes(settings, len(certs))
        sends_per_s = len(certs) / (time.perf_counter() - begin)
        dispatch_cpu = (cpu_seconds(psutil.Process(dispatch_process.pid)) - dispatch_cpu) / len(certs)
        fk_cpu = (cpu_seconds(fk_process) - fk_cpu) / len(certs)
        assert await scalar(settings, outcomes_sql) == len(certs)

        # (2) latency at 20/s
        lat = await paced_latencies(settings, paced, args.rate)

        # (3) recovery after an outage with 10,000 sends queued
        recovery_s: float | None = None
        counts = "-"
        if with_recovery:
            queued = certificates(args.queued, seed + 2, key)
            down_until = datetime.now(UTC) + timedelta(seconds=args.outage_seconds)
            await fk_faults(fk_url, latency_ms=LATENCY_MS, down_until=down_until.isoformat())
            await produce(settings, CONSENT_RELEASED.name, [(p.ref.encode(), p.released) for p in queued])
            await produce(
                settings, PORTAL_DISPATCH_REQUESTS.name, [(p.cert_id.encode(), request_bytes(p)) for p in queued]
            )
            await wait_for_count(settings, "SELECT count(*) FROM sends", len(certs) + len(paced) + len(queued), 3600)
            if datetime.now(UTC) >= down_until:
                print(f"  warning: queueing {len(queued)} took longer than the outage", flush=True)
            wait = (down_until - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(wait, 0))
            up = time.perf_counter()
            total = len(certs) + len(paced) + len(queued)
            done = await wait_for_count(settings, outcomes_sql, total, 3600)
            recovery_s = done - up
            received = await received_per_certificate(fk_url)
            per = [received.get(p.cert_id, 0) for p in queued]
            counts = (f"in={len(queued)} received_once={per.count(1)} lost={per.count(0)} "
                      f"duplicated={sum(1 for c in per if c > 1)}")  # fmt: skip
        return Run(
            baseline_per_s=base_rate,
            baseline_call_p50_ms=percentile(calls, 50) * 1000,
            baseline_call_p99_ms=percentile(calls, 99) * 1000,
            sends_per_s=sends_per_s,
            p50_ms=percentile(lat, 50) * 1000,
            p99_ms=percentile(lat, 99) * 1000,
            recovery_s=recovery_s,
            recovery_counts=counts,
            dispatch_cpu_ms=dispatch_cpu * 1000,
            fk_cpu_ms=fk_cpu * 1000,
            baseline_fk_cpu_ms=baseline_fk_cpu * 1000,
        )
    finally:
        processes.stop_all()
        for schema in (settings.db_schema, fk_schema):
            await drop_schema(settings.database_url, schema)


async def wait_for_outcomes(settings: DispatchSettings, n: int, within: float = 600) -> None:
    """Until `n` outcome events are on dispatch.outcomes.v1 (end offsets summed)."""
    from aiokafka import TopicPartition

    topic = settings.topic(DISPATCH_OUTCOMES.name)
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
                if sum(ends.values()) >= n:
                    return
            else:
                await consumer._client.force_metadata_update()
            await asyncio.sleep(0.01)
        raise SystemExit(f"fewer than {n} outcomes within {within:.0f} s")
    finally:
        await consumer.stop()


async def main_async(args: argparse.Namespace) -> None:
    print(machine(), flush=True)
    print(
        f"dispatch bench: FK simulator answering in {LATENCY_MS} ms, concurrency {args.concurrency}, "
        f"{args.sends} sends for throughput, {args.paced} paced at {args.rate}/s, "
        f"recovery: {args.queued} queued during a {args.outage_seconds:.0f} s outage in {args.recovery_runs} run(s); "
        f"{args.runs} run(s)",
        flush=True,
    )
    runs: list[Run] = []
    for i in range(args.runs):
        run = await one_run(args, seed=7804 + i, with_recovery=i < args.recovery_runs)
        runs.append(run)
        recovery = f"{run.recovery_s:.1f} s ({run.recovery_counts})" if run.recovery_s is not None else "not run"
        print(
            f"  run {i + 1}: baseline raw HTTP {run.baseline_per_s:.0f}/s (one call p50 {run.baseline_call_p50_ms:.0f} "
            f"ms, p99 {run.baseline_call_p99_ms:.0f} ms) | dispatch {run.sends_per_s:.0f} sends/s | "
            f"request→outcome at {args.rate}/s p50 {run.p50_ms:.0f} ms p99 {run.p99_ms:.0f} ms | "
            f"recovery {recovery} | CPU per send: dispatch {run.dispatch_cpu_ms:.1f} ms, simulator "
            f"{run.fk_cpu_ms:.1f} ms (baseline: simulator {run.baseline_fk_cpu_ms:.1f} ms per call)",
            flush=True,
        )
    recoveries = [r.recovery_s for r in runs if r.recovery_s is not None]
    print(
        f"median of {len(runs)}: baseline raw HTTP {median([r.baseline_per_s for r in runs]):.0f}/s | "
        f"dispatch {median([r.sends_per_s for r in runs]):.0f} sends/s (target >= 200) | "
        f"p99 request→outcome {median([r.p99_ms for r in runs]):.0f} ms at {args.rate}/s (target <= 500; "
        f"p50 {median([r.p50_ms for r in runs]):.0f} ms) | "
        f"recovery after {args.outage_seconds:.0f} s outage with {args.queued} queued: "
        f"{median(recoveries):.1f} s (target <= 120; {len(recoveries)} run(s))",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recovery-runs", type=int, default=1, help="runs that also measure the outage recovery")
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--paced", type=int, default=400, help="requests paced at --rate for the latency")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--outage-seconds", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="small sizes and a 20 s outage, for a try")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.sends, args.paced, args.queued, args.outage_seconds = 1, 500, 100, 1000, 20.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
