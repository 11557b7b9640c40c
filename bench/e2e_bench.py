"""`make bench`: end to end, from intake's acknowledgement to the certificate visible in the portal's read model and
counted in statistics, on one broker and on a three-node cluster, beside raw Kafka produce→consume latency on the
same brokers in the same run.

Per topology (a private broker or a private three-node KRaft cluster on free ports; the machine's PostgreSQL with
schemas of this run): intake, consent, portal and stats as processes of their own; every citizen has consented, so
each certificate crosses intake → consent's gate → portal and stats. Certificates are posted on a fixed schedule
(open loop); a poller reads the portal's and statistics' tables every 10 ms and notes when each acknowledged
certificate is in both. Reported: p50 / p99 at 100 certificates/s, then the highest rate of a ladder that is
sustained (≥ 95 % of the rate acknowledged, and the last certificate of the step visible within 5 s of its
acknowledgement), and raw aiokafka produce→consume p50 / p99 at 100 messages/s on the same brokers.

    python -m bench.e2e_bench [--seconds 20] [--ladder 100,200,300,400] [--only one|cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import machine, percentile
from bench.loadclient import connect, post_request
from deploy.local.infra import KafkaCluster, KafkaNode
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory
from schemas.topics import TopicSpec
from services.intake import repo as intake_repo
from services.kit.citizen import citizen_ref
from services.kit.kafka import client_options, ensure_topics
from services.kit.settings import DEV_CITIZEN_REF_KEY, ServiceSettings
from tests.harness import wait_ready

BIN = Path(sys.executable).parent
AUTH = {"Authorization": "Bearer dev-platform-secret", "Content-Type": "application/json"}
CONSENT_AUTH = {"Authorization": "Bearer dev-portal-to-consent"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_range(size: int) -> int:
    def free(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0

    for base in range(27100, 27900, 10):  # below the ephemeral range (32768+)
        if all(free(base + i) and free(base + 1000 + i) for i in range(size)):
            return base
    raise SystemExit("no free port range for the bench cluster")


@dataclass
class Phase:
    rate: float
    sent: int
    acknowledged: int
    visible: int
    latencies_ms: list[float] = field(default_factory=list)
    last_visible_after_s: float = float("nan")

    @property
    def sustained(self) -> bool:
        return (
            self.acknowledged >= 0.95 * self.sent
            and self.visible == self.acknowledged
            and (self.last_visible_after_s <= 5.0)
        )

    def line(self) -> str:
        return (
            f"rate {self.rate:>5.0f}/s: sent {self.sent} acknowledged {self.acknowledged} visible {self.visible} "
            f"p50 {percentile(self.latencies_ms, 50):.0f} ms p99 {percentile(self.latencies_ms, 99):.0f} ms "
            f"max {max(self.latencies_ms, default=float('nan')):.0f} ms "
            f"{'sustained' if self.sustained else 'NOT sustained'}"
        )


class Visibility:
    """Polls the portal's and statistics' tables; `seen[id]` is when a certificate was first in both."""

    def __init__(self, url: str, portal: str, stats: str) -> None:
        self.url, self.portal, self.stats = url, portal, stats
        self.pending: set[str] = set()
        self.seen: dict[str, float] = {}
        self._in_portal: set[str] = set()
        self._in_stats: set[str] = set()
        self._changed = asyncio.Condition()

    async def all_seen(self, ids: set[str]) -> None:
        while not ids <= self.seen.keys():
            async with self._changed:
                await self._changed.wait()

    async def run(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            while True:
                if self.pending:
                    ids = list(self.pending)
                    portal = await conn.fetch(f'SELECT id FROM "{self.portal}".certificates WHERE id = ANY($1)', ids)  # noqa: S608
                    stats = await conn.fetch(
                        f'SELECT certificate_id FROM "{self.stats}".facts WHERE certificate_id = ANY($1)',  # noqa: S608
                        ids,
                    )
                    now = time.perf_counter()
                    self._in_portal.update(r[0] for r in portal)
                    self._in_stats.update(r[0] for r in stats)
                    for cid in self._in_portal & self._in_stats & self.pending:
                        self.seen[cid] = now
                        self.pending.discard(cid)
                    async with self._changed:
                        self._changed.notify_all()
                await asyncio.sleep(0.01)
        finally:
            await conn.close()


async def phase(
    intake_port: int, bodies: list[tuple[str, bytes]], rate: float, visibility: Visibility, connections: int = 64
) -> Phase:
    acked: dict[str, float] = {}
    idle: asyncio.Queue[object] = asyncio.Queue()
    conns = [await connect("127.0.0.1", intake_port) for _ in range(connections)]
    for c in conns:
        idle.put_nowait(c)

    async def one(cid: str, request: bytes) -> None:
        conn = await idle.get()
        try:
            status = await conn.exchange(request)  # type: ignore[attr-defined]
        finally:
            idle.put_nowait(conn)
        if status in (200, 201):
            acked[cid] = time.perf_counter()
            visibility.pending.add(cid)

    tasks = []
    begin = time.perf_counter()
    for i, (cid, body) in enumerate(bodies):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(cid, post_request("127.0.0.1", intake_port, "/v1/certificates", body,
                                                                    AUTH))))  # fmt: skip
    await asyncio.gather(*tasks)
    last_ack = max(acked.values(), default=time.perf_counter())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(visibility.all_seen(set(acked)), timeout=30)
    for c in conns:
        c.close()
    seen = {cid: visibility.seen[cid] for cid in acked if cid in visibility.seen}
    result = Phase(rate, len(bodies), len(acked), len(seen))
    result.latencies_ms = [(seen[cid] - acked[cid]) * 1000 for cid in seen]
    if seen:
        result.last_visible_after_s = max(seen.values()) - last_ack
    return result


async def raw_kafka(bootstrap: str, replication: int, rate: float, seconds: float) -> list[float]:
    """aiokafka (acks=all, idempotent) produce → consume latency of small messages at `rate`, on the same brokers."""
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, kafka_replication_factor=replication)
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [TopicSpec(topic, "test")])
    # No consumer group: on a fresh broker the group coordinator can take a minute to appear.
    consumer = AIOKafkaConsumer(**client_options(bootstrap=bootstrap), enable_auto_commit=False)
    producer = AIOKafkaProducer(**client_options(bootstrap=bootstrap), acks="all", enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    n = int(rate * seconds)
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await producer.send_and_wait(topic, b"warm-up")

        async def consume() -> None:
            while len(latencies) < n:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    now = time.perf_counter()
                    for r in records:
                        if r.value and r.value != b"warm-up":
                            latencies.append((now - float(r.value)) * 1000)

        reader = asyncio.create_task(consume())
        begin = time.perf_counter()
        for i in range(n):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topic, str(time.perf_counter()).encode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, timeout=30)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


def start(service: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(BIN / f"minaintyg-{service}")], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


async def topology(name: str, bootstrap: str, replication: int, args: argparse.Namespace) -> list[str]:
    base = ServiceSettings()
    unique = uuid.uuid4().hex[:8]
    schemas = {s: f"e2e_{unique}_{s}" for s in ("intake", "consent", "portal", "stats")}
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_REPLICATION_FACTOR": str(replication),
           "MINAINTYG_TOPIC_PREFIX": f"e2e{unique}.", "LOG_LEVEL": "WARNING", "MINAINTYG_ENV": "test"}  # fmt: skip
    ports = {s: free_port() for s in schemas}
    procs: list[subprocess.Popen[bytes]] = []
    logs = Path(tempfile.mkdtemp(prefix=f"e2e-bench-{unique}-"))
    lines = [f"[{name}] brokers {bootstrap}"]
    try:
        raw = await raw_kafka(bootstrap, replication, 100, args.seconds)
        lines.append(f"[{name}] raw Kafka produce→consume at 100/s: p50 {percentile(raw, 50):.1f} ms "
                     f"p99 {percentile(raw, 99):.1f} ms ({len(raw)} messages)")  # fmt: skip
        for service, schema in schemas.items():
            prefix = service.upper()
            extra = {f"{prefix}_PORT": str(ports[service]), f"{prefix}_DB_SCHEMA": schema}
            if service == "intake":
                extra["INTAKE_RATE_LIMIT"] = "1000000/second"  # the ladder measures throughput, not the abuse limit
            if service == "portal":
                extra |= {"PORTAL_PUBLIC_ORIGIN": f"http://127.0.0.1:{ports['portal']}",
                          "PORTAL_OIDC_ISSUER": "http://127.0.0.1:9"}  # fmt: skip
            procs.append(start(service, {**env, **extra}, logs / f"{service}.log"))
        for service in schemas:
            await wait_ready(f"http://127.0.0.1:{ports[service]}", within=240)
        conn = await asyncpg.connect(base.database_url, server_settings={"search_path": schemas["intake"]})
        try:
            await intake_repo.connect_care_units(conn, [(u.hsa_id, u.name, u.county.value) for u in CARE_UNITS])
        finally:
            await conn.close()
        factory = CertificateFactory(seed=11, persons=400, test_patient_share=0.0)
        async with httpx.AsyncClient(timeout=30) as client:
            for person in factory.persons:
                ref = citizen_ref(person.personnummer, DEV_CITIZEN_REF_KEY)
                answer = await client.post(f"http://127.0.0.1:{ports['consent']}/internal/v1/citizens/{ref}/consent",
                                           json={"text_version": "2025-1"}, headers=CONSENT_AUTH)  # fmt: skip
                answer.raise_for_status()

        def bodies(n: int) -> list[tuple[str, bytes]]:
            made = [factory.certificate("LISJP") for _ in range(n)]
            return [(c["id"], orjson.dumps(c)) for c in made]

        visibility = Visibility(base.database_url, schemas["portal"], schemas["stats"])
        poller = asyncio.create_task(visibility.run())
        try:
            await phase(ports["intake"], bodies(50), 25, visibility)  # warm-up: connections, metadata, caches
            paced = await phase(ports["intake"], bodies(int(100 * args.seconds)), 100, visibility)
            lines.append(f"[{name}] end to end {paced.line()}")
            best = 0.0
            for rate in args.ladder:
                step = await phase(ports["intake"], bodies(int(rate * args.step_seconds)), rate, visibility)
                lines.append(f"[{name}] ladder  {step.line()}")
                if not step.sustained:
                    break
                best = rate
            lines.append(f"[{name}] highest sustained end to end: {best:.0f} certificates/s")
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        conn = await asyncpg.connect(base.database_url)
        try:
            for schema in schemas.values():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
        shutil.rmtree(logs, ignore_errors=True)
    for line in lines:
        print(line, flush=True)
    return lines


async def main_async(args: argparse.Namespace) -> None:
    print(machine(), flush=True)
    home = Path(tempfile.mkdtemp(prefix="e2e-bench-kafka-"))
    try:
        if args.only in (None, "one"):
            node = KafkaNode(home / "one", port=free_port(), controller_port=free_port(), heap="512m")
            await asyncio.to_thread(node.start, 180)
            try:
                await topology("one broker", node.bootstrap, 1, args)
            finally:
                await asyncio.to_thread(node.stop)
        if args.only in (None, "cluster"):
            base = free_range(3)
            cluster = KafkaCluster(home / "cluster", first_port=base, first_controller_port=base + 1000, heap="384m")
            await asyncio.to_thread(cluster.start, 240)
            try:
                await topology("three-node cluster", cluster.bootstrap, 3, args)
            finally:
                await asyncio.to_thread(cluster.stop)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the paced 100/s phases")
    parser.add_argument("--step-seconds", type=float, default=15.0, help="length of each step of the rate ladder")
    parser.add_argument("--ladder", type=lambda s: [float(x) for x in s.split(",")], default=[100, 200, 300, 400, 500])
    parser.add_argument("--only", choices=["one", "cluster"])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
