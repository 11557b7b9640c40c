"""`make chaos`: the whole system on a cluster of its own under faults, then the checker (tests/chaos/checker.py).

Everything this run touches is its own: a three-node KRaft cluster on free ports (tests/integration's
`KafkaCluster`), a private PostgreSQL server (tests/chaos/postgres.py), a topic prefix and schemas; every service
replica and the Försäkringskassan simulator is a process of its own, started from its console script with
environment only, as `make run CLUSTER=3` starts them.

A workload at a steady rate (certificates of consenting and non-consenting citizens and test patients,
revocations also before their certificate, consent given / withdrawn / given again, sends to Försäkringskassan)
runs while a nemesis injects faults on a schedule and at random: SIGKILL and SIGSTOP/SIGCONT of any service
replica, kill -9 of a broker (the active controller every other time), a broker paused past its session timeout
(it loses its leaderships), an immediate restart of PostgreSQL, and the FK simulator failing and dropping
responses. Then everything heals, the run waits for quiescence and the checker prints one line of counts. Exit 1
on any loss, duplicate or leak; the logs of every process are kept under tests/chaos/artifacts/<run> when it fails
(or always, with --keep-logs).

    python -m tests.chaos.runner [--seconds 600] [--rate 4] [--seed N] [--keep-logs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from deploy.local.infra import KafkaCluster, KafkaNode
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory, Person
from schemas.envelope import encode, new_envelope
from schemas.events import DispatchRequested
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.kit.citizen import citizen_ref
from services.kit.settings import DEV_CITIZEN_REF_KEY
from tests.chaos.checker import CASE_TYPES, CertificateModel, CitizenModel, Consent, Counts, Model, Observation, check
from tests.chaos.postgres import PrivatePostgres

BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).parent / "artifacts"
PLATFORM = {"Authorization": "Bearer dev-platform-secret"}
CONSENT_AUTH = {"Authorization": "Bearer dev-portal-to-consent"}
TEXT_VERSION = "2025-1"


def say(message: str) -> None:
    print(f"[chaos {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Config:
    seconds: float = 540.0  # workload and faults; then healing, quiescence, the check (~14 min in all here)
    rate: float = 4.0  # certificates per second
    citizens: int = 60
    service_fault_every: float = 7.0  # mean seconds between two random service faults
    service_kill_share: float = 0.75  # the rest are SIGSTOP/SIGCONT
    broker_kill_every: float = 55.0
    broker_pause_every: float = 240.0
    pg_restart_every: float = 130.0
    fk_fault_every: float = 150.0
    quiesce_timeout: float = 240.0
    seed: int = 0
    keep_logs: bool = False

    @classmethod
    def short(cls) -> Config:
        """The variant `make test` runs: a couple of minutes, a fault of each kind."""
        return cls(seconds=60, rate=3, citizens=30, service_fault_every=9, broker_kill_every=40,
                   broker_pause_every=1000, pg_restart_every=45, fk_fault_every=60, quiesce_timeout=150)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_range(size: int) -> int:
    def free(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0

    # Below the ephemeral range (32768+), so no client connection takes a port between this check and the bind.
    start = random.Random().randrange(21000, 26000, 10)
    candidates: list[int] = [*range(start, 27000, 10), *range(21000, start, 10)]
    for base in candidates:
        if all(free(base + i) and free(base + 1000 + i) for i in range(size)):
            return base
    raise RuntimeError("no free port range for the chaos cluster")


# --- processes --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    command: str
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} at {datetime.now(UTC).isoformat()} ===\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [str(BIN / self.command)], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class System:
    unique: str
    home: Path
    cluster: KafkaCluster
    postgres: PrivatePostgres
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"chaos{self.unique}."

    def schema(self, service: str) -> str:
        return f"chaos_{self.unique}_{service}"

    def replicas(self, service: str) -> list[Proc]:
        return [p for p in self.procs.values() if p.name.split("-")[0] == service and p.port is not None]

    def build(self) -> None:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "CONSENT_", "PORTAL_", "STATS_"))},
            **self.cluster.client_environment(), "KAFKA_REPLICATION_FACTOR": "3",
            "DATABASE_URL": self.postgres.url, "MINAINTYG_TOPIC_PREFIX": self.prefix, "LOG_JSON": "true",
            "LOG_LEVEL": "INFO", "MINAINTYG_ENV": "test",
        }  # fmt: skip
        fk_port = free_port()
        layout: list[tuple[str, str, str, str, dict[str, str]]] = [
            ("fk", "fk-sim", "FKSIM_", "fk", {}),
            ("intake-1", "minaintyg-intake", "INTAKE_", "intake", {}),
            ("intake-2", "minaintyg-intake", "INTAKE_", "intake", {}),
            ("consent-1", "minaintyg-consent", "CONSENT_", "consent", {}),
            ("consent-2", "minaintyg-consent", "CONSENT_", "consent", {}),
            ("portal-1", "minaintyg-portal", "PORTAL_", "portal", {}),
            ("portal-2", "minaintyg-portal", "PORTAL_", "portal", {}),
            ("stats-1", "minaintyg-stats", "STATS_", "stats", {"STATS_PUBLISH_INTERVAL_SECONDS": "5"}),
            # The statistics ingest is one consumer group of one process; a second process serves reports only.
            ("stats-reports", "minaintyg-stats", "STATS_", "stats", {
                "STATS_CONSUMER_ENABLED": "false", "STATS_RELAY_ENABLED": "false",
                "STATS_PUBLISHER_ENABLED": "false"}),
        ]  # fmt: skip
        dispatch = {
            "DISPATCH_FK_ENDPOINT": f"http://127.0.0.1:{fk_port}", "DISPATCH_RETRY_MAX_SECONDS": "5",
            "DISPATCH_CALL_TIMEOUT_SECONDS": "5", "DISPATCH_LEASE_SECONDS": "20",
            "DISPATCH_BREAKER_MAX_OPEN_SECONDS": "10",
        }  # fmt: skip
        layout += [(f"dispatch-{i}", "minaintyg-dispatch", "DISPATCH_", "dispatch", dispatch) for i in (1, 2)]
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, command, prefix, service, extra in layout:
            port = fk_port if name == "fk" else free_port()
            env = {**base, f"{prefix}PORT": str(port), f"{prefix}DB_SCHEMA": self.schema(service), **extra}
            if service == "portal":
                env |= {"PORTAL_PUBLIC_ORIGIN": f"http://127.0.0.1:{port}", "PORTAL_OIDC_ISSUER": "http://127.0.0.1:9"}
            self.procs[name] = Proc(name, command, env, logs / f"{name}.log", port)

    def services(self) -> list[Proc]:
        return [p for p in self.procs.values() if p.name != "fk"]


async def ready(client: httpx.AsyncClient, proc: Proc) -> bool:
    try:
        return (await client.get(f"{proc.url}/readyz", timeout=3)).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_all_ready(system: System, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        pending = list(system.procs.values())
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited: {proc.log.read_text(errors='replace')[-3000:]}")
                if await ready(client, proc):
                    pending.remove(proc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {timeout} s: {[p.name for p in pending]}")
            await asyncio.sleep(1)


async def connect_units(system: System) -> None:
    env = {**system.procs["intake-1"].env}
    for _ in range(20):
        process = await asyncio.create_subprocess_exec(
            str(BIN / "minaintyg-admin"), "care-units", "connect-simulated", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, errors = await asyncio.wait_for(process.communicate(), timeout=120)
        if process.returncode == 0:
            return
        say(f"connect-simulated failed, again: {errors.decode()[-300:]}")
        await asyncio.sleep(2)
    raise RuntimeError("could not connect the simulated care units")


# --- workload ---------------------------------------------------------------------------------------------

GROUPS = ("stays", "late", "never", "withdraws", "returns")


@dataclass
class Workload:
    system: System
    config: Config
    model: Model = field(default_factory=Model)
    rng: random.Random = field(default_factory=random.Random)
    ops: Counter[str] = field(default_factory=Counter)
    producer: AIOKafkaProducer | None = None
    stopping: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    people: list[tuple[Person, str, str]] = field(default_factory=list)  # (person, ref, group)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.factory = CertificateFactory(seed=self.config.seed, persons=self.config.citizens,
                                          persons_seed=self.config.seed + 1, test_patient_share=0.1)  # fmt: skip
        for i, person in enumerate(self.factory.persons):
            ref = citizen_ref(person.personnummer, DEV_CITIZEN_REF_KEY)
            self.people.append((person, ref, GROUPS[i % len(GROUPS)]))
            self.model.citizens[ref] = CitizenModel(ref)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        self.limit = asyncio.Semaphore(64)

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def call(self, service: str, method: str, path: str, *, ok: Callable[[int], bool], **kwargs: Any) -> int:
        """Retry on any replica until an answer `ok` accepts; returns its status (or raises after the deadline)."""
        replicas = self.system.replicas(service)
        attempt = 0
        while True:
            proc = replicas[(attempt + self.rng.randrange(len(replicas))) % len(replicas)]
            attempt += 1
            try:
                async with self.limit:
                    answer = await self.client.request(method, f"{proc.url}{path}", **kwargs)
                if ok(answer.status_code):
                    return answer.status_code
                self.ops[f"{service}_{answer.status_code}"] += 1
            except httpx.HTTPError:
                self.ops[f"{service}_unanswered"] += 1
            if self.stopping and time.monotonic() > self.give_up_at:
                raise TimeoutError(f"{method} {path}")
            await asyncio.sleep(min(2.0, 0.2 * attempt))

    give_up_at: float = float("inf")

    async def set_consent(self, ref: str, give: bool) -> None:
        citizen = self.model.citizens[ref]
        path = f"/internal/v1/citizens/{ref}/consent" + ("" if give else "/withdrawal")
        body = {"text_version": TEXT_VERSION} if give else {}
        citizen.ambiguous = True
        try:
            await self.call("consent", "POST", path, ok=lambda s: s == 200, json=body, headers=CONSENT_AUTH)
        except TimeoutError:
            return
        citizen.ambiguous = False
        citizen.consent = Consent.GIVEN if give else Consent.WITHDRAWN
        citizen.ever_given |= give
        self.ops["consent_given" if give else "consent_withdrawn"] += 1

    async def certificate(self, person: Person, ref: str, group: str) -> None:
        body = self.factory.certificate(person=person, unit=self.rng.choice(CARE_UNITS[:3]))
        cert = CertificateModel(body["id"], ref, body["type"], person.test_patient)
        self.model.certificates[cert.id] = cert
        early_revoke = self.rng.random() < 0.04
        if early_revoke:  # the revocation overtakes its certificate: intake answers 404 (retry later)
            with contextlib.suppress(TimeoutError):
                await self.call("intake", "POST", f"/v1/certificates/{cert.id}/revocation",
                                ok=lambda s: s == 404, json={}, headers=PLATFORM)  # fmt: skip
                self.ops["revoke_before_issue"] += 1
        cert.ambiguous = True
        try:
            await self.call("intake", "POST", "/v1/certificates", ok=lambda s: s in (200, 201), json=body,
                            headers=PLATFORM)  # fmt: skip
        except TimeoutError:
            return
        cert.ambiguous, cert.acknowledged = False, True
        self.ops["issued"] += 1
        if early_revoke or self.rng.random() < 0.08:
            await asyncio.sleep(self.rng.uniform(0, 3))
            await self.revoke(cert)
        elif group == "stays" and cert.type == "LISJP" and not cert.test_patient and self.rng.random() < 0.35:
            await asyncio.sleep(self.rng.uniform(1, 4))
            await self.send(cert)

    async def revoke(self, cert: CertificateModel) -> None:
        cert.revoke_ambiguous = True
        try:
            await self.call("intake", "POST", f"/v1/certificates/{cert.id}/revocation", ok=lambda s: s == 200,
                            json={}, headers=PLATFORM)  # fmt: skip
        except TimeoutError:
            return
        cert.revoke_ambiguous, cert.revoked = False, True
        self.ops["revoked"] += 1

    async def send(self, cert: CertificateModel) -> None:
        """A citizen's send to Försäkringskassan, as the portal puts it on its topic (one idempotency key, retried
        until the broker acknowledges it)."""
        assert self.producer is not None
        key = uuid.uuid4()
        now = datetime.now(UTC)
        data = DispatchRequested(idempotency_key=key, certificate_id=cert.id, recipient_id="FKASSA",
                                 citizen_ref=cert.citizen, requested_at=now)  # fmt: skip
        value = encode(new_envelope(data, source="chaos/portal", time=now, correlation_id=str(key), subject=cert.id))
        topic = self.system.prefix + PORTAL_DISPATCH_REQUESTS.name
        while True:
            try:
                async with asyncio.timeout(15):
                    await self.producer.send_and_wait(topic, value=value, key=cert.id.encode())
                cert.send_requested = True
                self.ops["send_requested"] += 1
                return
            except Exception:
                self.ops["send_unacknowledged"] += 1
                if self.stopping and time.monotonic() > self.give_up_at:
                    return
                await asyncio.sleep(1)

    async def consent_plan(self, seconds: float) -> None:
        """Consent first for those who have it from the start; the others' changes spread over the run."""
        for _, ref, group in self.people:
            if group in ("stays", "withdraws", "returns"):
                self.spawn(self.set_consent(ref, True))
        for _, ref, group in self.people:
            if group == "late":
                self.spawn(self._later(self.rng.uniform(0.2, 0.7) * seconds, self.set_consent(ref, True)))
            elif group == "withdraws":
                self.spawn(self._later(self.rng.uniform(0.2, 0.8) * seconds, self.set_consent(ref, False)))
            elif group == "returns":
                first = self.rng.uniform(0.1, 0.5) * seconds
                self.spawn(self._later(first, self._returns(ref, self.rng.uniform(5, 0.3 * seconds))))

    async def _returns(self, ref: str, gap: float) -> None:
        await self.set_consent(ref, False)
        await asyncio.sleep(gap)
        await self.set_consent(ref, True)

    @staticmethod
    async def _later(delay: float, work: Awaitable[None]) -> None:
        await asyncio.sleep(delay)
        await work

    async def run(self, seconds: float) -> None:
        self.producer = AIOKafkaProducer(
            **self.system.cluster.client_options(), acks="all", enable_idempotence=True,
            request_timeout_ms=10_000, retry_backoff_ms=200,
        )  # fmt: skip
        await self.producer.start()
        await self.consent_plan(seconds)
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            person, ref, group = self.rng.choice(self.people)
            self.spawn(self.certificate(person, ref, group))
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.config.rate - time.monotonic()))

    async def drain(self, timeout: float) -> None:
        """Every operation still retrying gets `timeout` more seconds; what is left then stays ambiguous."""
        self.stopping = True
        self.give_up_at = time.monotonic() + timeout
        while self.tasks and time.monotonic() < self.give_up_at + 30:
            await asyncio.wait(list(self.tasks), timeout=1)
        for task in list(self.tasks):
            task.cancel()

    async def close(self) -> None:
        await self.client.aclose()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self.producer.stop()


# --- nemesis ----------------------------------------------------------------------------------------------


def active_controller(cluster: KafkaCluster) -> KafkaNode | None:
    """The quorum's leader as the running nodes last recorded it (`__cluster_metadata-0/quorum-state`)."""
    votes: Counter[int] = Counter()
    for node in cluster.nodes:
        if node.pid() is None:
            continue
        with contextlib.suppress(OSError, ValueError, KeyError):
            state = json.loads((node.home / "data" / "__cluster_metadata-0" / "quorum-state").read_text())
            if state.get("leaderId", -1) >= 0:
                votes[int(state["leaderId"])] += 1
    if not votes:
        return None
    leader = votes.most_common(1)[0][0]
    return next((n for n in cluster.nodes if n.node_id == leader), None)


@dataclass
class Nemesis:
    system: System
    config: Config
    rng: random.Random
    faults: Counter[str] = field(default_factory=Counter)
    last_healed: float = 0.0
    busy: set[str] = field(default_factory=set)

    last_fault: str = ""

    def healed(self, fault: str = "") -> None:
        self.last_healed = time.monotonic()
        self.last_fault = fault or self.last_fault

    async def service_fault(self) -> None:
        candidates = [p for p in self.system.services() if p.name not in self.busy and p.alive()]
        if not candidates:
            return
        proc = self.rng.choice(candidates)
        self.busy.add(proc.name)
        try:
            if self.rng.random() < self.config.service_kill_share:
                proc.kill()
                self.faults["service_kill"] += 1
                await asyncio.sleep(self.rng.uniform(0.2, 3.0))
                proc.start()
            else:
                proc.signal(signal.SIGSTOP)
                self.faults["service_pause"] += 1
                await asyncio.sleep(self.rng.uniform(1.0, 8.0))
                proc.signal(signal.SIGCONT)
        finally:
            self.busy.discard(proc.name)
            self.healed(f"service fault of {proc.name}")

    async def broker_kill(self) -> None:
        controller = active_controller(self.system.cluster)
        if self.faults["broker_kill"] % 2 == 0 and controller is not None:
            node, which = controller, "broker_kill_controller"
        else:
            node, which = self.rng.choice(self.system.cluster.nodes), "broker_kill_other"
        await asyncio.to_thread(node.kill)
        self.faults["broker_kill"] += 1
        self.faults[which] += 1
        say(f"kill -9 broker {node.node_id} ({which})")
        await asyncio.sleep(self.rng.uniform(3, 10))
        await asyncio.to_thread(node.launch)
        await asyncio.to_thread(node.wait_ready, 180)
        self.healed(f"kill -9 of broker {node.node_id}")

    async def broker_pause(self) -> None:
        node = self.rng.choice(self.system.cluster.nodes)
        node.pause()
        self.faults["broker_pause"] += 1
        say(f"SIGSTOP broker {node.node_id} for longer than its session timeout")
        await asyncio.sleep(self.rng.uniform(13, 20))  # broker.session.timeout.ms is 9 s: it loses leadership
        node.resume()
        await asyncio.to_thread(node.wait_ready, 180)
        self.healed(f"pause of broker {node.node_id}")

    async def pg_restart(self) -> None:
        say("PostgreSQL immediate restart")
        await asyncio.to_thread(self.system.postgres.restart_immediate)
        self.faults["pg_restart"] += 1
        self.healed("PostgreSQL restart")

    async def fk_faults(self) -> None:
        url = f"{self.system.procs['fk'].url}/sim/faults"
        async with httpx.AsyncClient(timeout=5) as client:
            config = {"error_rate": 0.3, "drop_response_rate": 0.3, "seed": self.rng.randrange(1 << 30)}
            with contextlib.suppress(httpx.HTTPError):
                await client.put(url, json=config)
                self.faults["fk_failing"] += 1
            await asyncio.sleep(self.rng.uniform(10, 25))
            for _ in range(30):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.put(url, json={})).status_code == 200:
                        break
                await asyncio.sleep(1)
        self.healed("FK faults")

    async def periodic(self, every: float, offset: float, fault: Callable[[], Awaitable[None]], end: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() + 5 < end:
            started = time.monotonic()
            try:
                await fault()
            except Exception as exc:
                say(f"fault {fault.__name__} failed: {exc!r}")
            # Not past the end of the window: this lane's last wait (up to 1.2 × `every`, 180 s for FK faults)
            # once kept the run from healing and looking, long after every fault was over, and was counted as
            # recovery (84.5 s of a full run's).
            wait = started + every * self.rng.uniform(0.8, 1.2) - time.monotonic()
            await asyncio.sleep(max(0.0, min(wait, end - 5 - time.monotonic())))

    async def random_services(self, end: float) -> None:
        running: set[asyncio.Task[None]] = set()
        while time.monotonic() < end:
            delay = self.rng.expovariate(1 / self.config.service_fault_every)
            if time.monotonic() + delay >= end:
                break  # no fault after the window, and no wait past it
            await asyncio.sleep(delay)
            task = asyncio.create_task(self.service_fault())
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.wait(running)

    async def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        c = self.config
        lanes = [
            self.random_services(end),
            self.periodic(c.pg_restart_every, c.pg_restart_every * 0.4, self.pg_restart, end),
            self.periodic(c.fk_fault_every, c.fk_fault_every * 0.2, self.fk_faults, end),
            self._brokers(end),
        ]
        await asyncio.gather(*lanes)

    async def _brokers(self, end: float) -> None:
        """Kills and pauses one broker at a time (two down would stop every write: min.insync.replicas 2)."""
        c = self.config
        next_kill = time.monotonic() + c.broker_kill_every * 0.3
        next_pause = time.monotonic() + c.broker_pause_every * 0.5
        while time.monotonic() + 10 < end:
            now = time.monotonic()
            try:
                if now >= next_pause:
                    await self.broker_pause()
                    next_pause = time.monotonic() + c.broker_pause_every
                elif now >= next_kill:
                    # From the kill, not from the node's return: on a busy machine a restarted node takes a minute.
                    next_kill = now + c.broker_kill_every * self.rng.uniform(0.7, 1.1)
                    await self.broker_kill()
            except Exception as exc:
                say(f"broker fault failed: {exc!r}")
            await asyncio.sleep(1)

    async def heal(self) -> None:
        """Everything back: every process running and not stopped, every broker up, FK without faults."""
        for proc in self.system.procs.values():
            proc.signal(signal.SIGCONT)
            if not proc.alive():
                proc.start()
        for node in self.system.cluster.nodes:
            node.resume()
            await asyncio.to_thread(node.launch)
        for node in self.system.cluster.nodes:
            await asyncio.to_thread(node.wait_ready, 180)
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as client:
                await client.put(f"{self.system.procs['fk'].url}/sim/faults", json={})
        self.healed()


# --- observation ------------------------------------------------------------------------------------------


async def observe(system: System) -> Observation:
    conn = await asyncpg.connect(system.postgres.url, timeout=10)
    try:
        seen = Observation()
        portal = system.schema("portal")
        for row in await conn.fetch(
            f'SELECT c.id, count(h.id) FILTER (WHERE h.state = $1) AS n FROM "{portal}".certificates c '  # noqa: S608
            f'LEFT JOIN "{portal}".status_history h ON h.certificate_id = c.id GROUP BY c.id',
            "RECEIVED",
        ):
            seen.portal[row["id"]] = max(1, row["n"])
        stats = system.schema("stats")
        for row in await conn.fetch(f'SELECT certificate_id FROM "{stats}".facts'):  # noqa: S608
            seen.stats[row["certificate_id"]] += 1
        in_cases = await conn.fetchval(f'SELECT coalesce(sum(certificates), 0) FROM "{stats}".cases')  # noqa: S608
        case_facts = await conn.fetchval(
            f"SELECT count(*) FROM \"{stats}\".facts WHERE cert_type = ANY($1::text[]) AND periods <> '[]'::jsonb",  # noqa: S608
            list(CASE_TYPES),
        )
        seen.stats_overcount = int(in_cases) - int(case_facts)
        fk = system.schema("fk")
        for row in await conn.fetch(f'SELECT certificate_id, count(*) AS n FROM "{fk}".receipts GROUP BY 1'):  # noqa: S608
            seen.fk[row["certificate_id"]] = row["n"]
        return seen
    finally:
        await conn.close()


async def quiesce(system: System, model: Model, timeout: float) -> tuple[Counts, float | None]:
    """Poll until the services hold exactly what the model expects (and still do 10 s later), or the deadline."""
    deadline = time.monotonic() + timeout
    converged: float | None = None
    counts = Counts()
    reported = time.monotonic()
    looked = False
    while time.monotonic() < deadline:
        try:
            counts = check(model, await observe(system))
        except (OSError, asyncpg.PostgresError) as exc:
            say(f"observation failed: {exc!r}")
            await asyncio.sleep(2)
            continue
        if not looked:
            looked = True
            say("first look: " + ("everything there" if counts.ok else counts.line()))
        if counts.ok:
            if converged is None:
                converged = time.monotonic()
            elif time.monotonic() - converged >= 10:
                return counts, converged
        else:
            converged = None
            if time.monotonic() - reported >= 15:
                reported = time.monotonic()
                say(f"not yet: {counts.line()}")
        await asyncio.sleep(1)  # the recovery time's resolution
    return counts, converged


# --- the run ----------------------------------------------------------------------------------------------


async def run(config: Config) -> tuple[Counts, str]:
    unique = uuid.uuid4().hex[:8]
    home = Path(tempfile.mkdtemp(prefix=f"chaos-{unique}-", dir="/tmp"))
    os.chmod(home, 0o755)  # noqa: S103 - mkdtemp made it 0700: the postgres user must reach its data directory
    rng = random.Random(config.seed)
    base = free_range(3)
    cluster = KafkaCluster(home / "kafka", first_port=base, first_controller_port=base + 1000, heap="256m")
    postgres = PrivatePostgres(home / "pg", free_port())
    system = System(unique, home, cluster, postgres)
    started = time.monotonic()
    counts = Counts()
    line = ""
    try:
        say(f"run {unique} (seed {config.seed}) in {home}: PostgreSQL :{postgres.port}, Kafka {cluster.bootstrap}")
        await asyncio.gather(asyncio.to_thread(postgres.start), asyncio.to_thread(cluster.start, 180))
        system.build()
        for proc in system.procs.values():
            proc.start()
        await wait_all_ready(system, 240)
        await connect_units(system)
        say(f"system ready after {time.monotonic() - started:.0f} s: {len(system.procs)} processes")
        workload = Workload(system, config)
        nemesis = Nemesis(system, config, rng)
        work = asyncio.create_task(workload.run(config.seconds))
        await nemesis.run(config.seconds)
        await work
        say(f"faults over: {dict(nemesis.faults)}; healing")
        last_fault_over = nemesis.last_healed
        await nemesis.heal()
        healed_after = time.monotonic() - last_fault_over
        await workload.drain(90)
        await workload.close()
        say(f"workload done: {dict(workload.ops)}; waiting for quiescence")
        say(f"since the end of the last fault ({nemesis.last_fault}): healed +{healed_after:.1f} s, "
            f"workload drained +{time.monotonic() - last_fault_over:.1f} s")  # fmt: skip
        counts, converged = await quiesce(system, workload.model, config.quiesce_timeout)
        # From the end of the last fault (healing the ones still on, and the workload's retries, included).
        recovery = f"{converged - last_fault_over:.1f}s" if converged is not None else "none"
        faults = {k: nemesis.faults[k] for k in ("service_kill", "service_pause", "broker_kill",
                                                 "broker_kill_controller", "broker_pause", "pg_restart",
                                                 "fk_failing")}  # fmt: skip
        ambiguous = sum(1 for c in workload.model.certificates.values() if c.ambiguous or c.revoke_ambiguous)
        line = counts.line({**faults, "ambiguous": ambiguous, "recovery": recovery,
                            "elapsed": f"{time.monotonic() - started:.0f}s"})  # fmt: skip
        print(line, flush=True)
        return counts, line
    finally:
        for proc in system.procs.values():
            proc.signal(signal.SIGCONT)
            proc.signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.to_thread(proc.stop) for proc in system.procs.values()))
        for node in cluster.nodes:
            node.resume()  # a paused node cannot act on SIGTERM
        await asyncio.gather(*(asyncio.to_thread(node.stop) for node in cluster.nodes))
        with contextlib.suppress(subprocess.SubprocessError):
            await asyncio.to_thread(postgres.stop)
        if config.keep_logs or not counts.ok or not line:
            kept = ARTIFACTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{unique}"
            kept.mkdir(parents=True, exist_ok=True)
            if (home / "logs").exists():
                shutil.copytree(home / "logs", kept / "services")
            for node in cluster.nodes:
                if node.log_file.exists():
                    shutil.copy(node.log_file, kept / f"kafka-{node.node_id}.log")
            if (postgres.home / "postgres.log").exists():
                shutil.copy(postgres.home / "postgres.log", kept / "postgres.log")
            (kept / "counts.txt").write_text(line + "\n")
            say(f"logs kept in {kept}")
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the workload's producer retries loudly by design
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 540)))
    parser.add_argument("--rate", type=float, default=4.0, help="certificates per second")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30))))
    parser.add_argument("--short", action="store_true", help="the variant `make test` runs")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    config = Config.short() if args.short else Config(seconds=args.seconds, rate=args.rate)
    config.seed, config.keep_logs = args.seed, args.keep_logs
    counts, _ = asyncio.run(run(config))
    sys.exit(0 if counts.ok else 1)


if __name__ == "__main__":
    main()
