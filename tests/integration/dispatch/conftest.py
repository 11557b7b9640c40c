"""Fixtures of dispatch's integration tests: the Försäkringskassan simulator as a real HTTP process (its own schema),
dispatch in-process or as a process, and a feed that puts consent's and the portal's events on the topics."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.simulators.platform.generator import CertificateFactory, Person
from schemas.certificate import CERTIFICATE_ADAPTER, Certificate
from schemas.envelope import Envelope, decode, encode, new_envelope
from schemas.events import (
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    DispatchFailed,
    DispatchRequested,
    DispatchSucceeded,
    EventData,
)
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS
from services.dispatch.app import create_app
from services.dispatch.settings import DispatchSettings
from services.kit.citizen import citizen_ref
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from tests.harness import ServiceProcess, connect, drop_schema, eventually, in_process, read_topic, topic_prefix

FK_AUTH = {"Authorization": "Bearer dev-minaintyg-to-fk"}


class FkSim:
    """The simulator (`fk-sim`) as its own process on a free port, with its own schema."""

    def __init__(self, database_url: str, schema: str, log_file: Path, env: dict[str, str] | None = None) -> None:
        self.schema = schema
        self.database_url = database_url
        env = {"FKSIM_DB_SCHEMA": schema, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **(env or {})}
        self.process = ServiceProcess("fk-sim", env, port_env="FKSIM_PORT", log=log_file)
        self.url = self.process.url
        self.log_file = log_file
        self.client = httpx.AsyncClient(base_url=self.url, headers=FK_AUTH, timeout=30)

    async def start(self) -> None:
        await self.process.start()

    def stop(self) -> None:
        self.process.stop()

    async def faults(self, **faults: Any) -> None:
        response = await self.client.put("/sim/faults", json=faults)
        assert response.status_code == 200, response.text

    async def receipts(self, certificate_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/intyg/{certificate_id}/receipts")
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    async def received_counts(self) -> Counter[str]:
        """Receipts per certificate id, everything the simulator stored."""
        counts: Counter[str] = Counter()
        after = 0
        while True:
            page = (await self.client.get("/v1/received", params={"after": after, "limit": 1000})).json()
            for item in page["items"]:
                counts[item["certificate_id"]] += 1
            if not page["items"]:
                return counts
            after = page["next_after"]

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self.client.get("/sim/stats")).json()
        return result

    async def revocation_of(self, certificate_id: str) -> dict[str, Any] | None:
        async with connect(self.database_url, self.schema) as conn:
            row = await conn.fetchrow("SELECT * FROM revocations WHERE certificate_id = $1", certificate_id)
            return dict(row) if row else None


@pytest.fixture(scope="module")
async def fk_sim(base_settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FkSim]:
    """One simulator per test module (tests use their own certificate ids); faults are reset by `fk`."""
    schema = f"t_fk_{uuid.uuid4().hex[:10]}"
    sim = FkSim(base_settings.database_url, schema, tmp_path_factory.mktemp("fk") / "fk-sim.log")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.client.aclose()
        sim.stop()
        await drop_schema(base_settings.database_url, schema)


@pytest.fixture
async def fk(fk_sim: FkSim) -> AsyncIterator[FkSim]:
    await fk_sim.faults()
    yield fk_sim
    await fk_sim.faults()


def make_settings(schema: str, unique: str, fk_url: str, **overrides: Any) -> DispatchSettings:
    """Dispatch with short retry, breaker and poll times, so fault tests take seconds."""
    values: dict[str, Any] = {
        "db_schema": schema,
        "topic_prefix": topic_prefix(unique),
        "fk_endpoint": fk_url,
        "environment": "test",
        "log_json": False,
        "retry_first_seconds": 0.05,
        "retry_max_seconds": 1.0,
        "call_timeout_seconds": 2.0,
        "lease_seconds": 15.0,
        "breaker_failures": 3,
        "breaker_open_seconds": 0.3,
        "breaker_max_open_seconds": 2.0,
        "poll_seconds": 0.1,
        "unknown_certificate_grace_seconds": 2.0,
        "registry_refresh_seconds": 1.0,
    }
    values.update(overrides)
    return DispatchSettings(**values)


@pytest.fixture
def dispatch_settings(base_settings: ServiceSettings, schema: str, unique: str, fk: FkSim) -> DispatchSettings:
    return make_settings(schema, unique, fk.url)


@pytest.fixture
async def dispatch_app(dispatch_settings: DispatchSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Dispatch in-process (consumer, senders, relay), with a client of its HTTP API."""
    async with in_process(create_app(dispatch_settings), "http://dispatch") as client:
        yield client


class Feed:
    """Puts consent's and the portal's events on the test's topics, and reads dispatch's outcomes."""

    def __init__(self, settings: DispatchSettings, factory: CertificateFactory) -> None:
        self.settings = settings
        self.factory = factory
        self.key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
        self.producer: AIOKafkaProducer = make_producer(settings, client_id="test-feed")
        self.persons = [p for p in factory.persons if not p.test_patient]
        self.test_persons = [p for p in factory.persons if p.test_patient]

    def ref(self, person: Person) -> str:
        return citizen_ref(person.personnummer, self.key)

    def certificate(self, cert_type: str = "LISJP", person: Person | None = None) -> tuple[Certificate, str]:
        person = person or self.factory.rng.choice(self.persons)
        cert = CERTIFICATE_ADAPTER.validate_python(self.factory.certificate(cert_type, person=person))
        return cert, self.ref(person)

    async def _send(self, topic: str, key: str, data: EventData, subject: str | None = None) -> Envelope:
        envelope = new_envelope(data, source="test", time=datetime.now(UTC), correlation_id="t", subject=subject)
        await self.producer.send_and_wait(self.settings.topic(topic), value=encode(envelope), key=key.encode())
        return envelope

    async def raw(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.settings.topic(topic), value=value, key=key)

    async def release(self, cert: Certificate, ref: str, *, test_patient: bool = False) -> None:
        data = CertificateReleased(
            citizen_ref=ref, certificate=cert, test_patient=test_patient, released_at=datetime.now(UTC)
        )
        await self._send(CONSENT_RELEASED.name, ref, data, cert.id)

    async def revoke(self, cert: Certificate, ref: str) -> None:
        data = CertificateRevoked(
            citizen_ref=ref, certificate_id=cert.id, certificate_type=cert.type, revoked_at=datetime.now(UTC)
        )
        await self._send(CONSENT_RELEASED.name, ref, data, cert.id)

    async def withdraw(self, ref: str) -> None:
        await self._send(CONSENT_RELEASED.name, ref, CitizenDataWithdrawn(citizen_ref=ref, at=datetime.now(UTC)))

    async def request(self, certificate_id: str, ref: str, recipient: str = "FKASSA") -> uuid.UUID:
        key = uuid.uuid4()
        data = DispatchRequested(
            idempotency_key=key, certificate_id=certificate_id, recipient_id=recipient, citizen_ref=ref,
            requested_at=datetime.now(UTC),
        )  # fmt: skip
        await self._send(PORTAL_DISPATCH_REQUESTS.name, certificate_id, data, certificate_id)
        return key

    async def outcomes(self) -> list[DispatchSucceeded | DispatchFailed]:
        records = await read_topic(self.settings.kafka_bootstrap_servers, self.settings.topic(DISPATCH_OUTCOMES.name))
        result = []
        for record in records:
            data = decode(record.value or b"").data
            assert isinstance(data, DispatchSucceeded | DispatchFailed)
            result.append(data)
        return result

    async def outcome_of(self, certificate_id: str, count: int = 1, timeout: float = 30) -> list[Any]:
        async def arrived() -> list[Any]:
            found = [o for o in await self.outcomes() if o.certificate_id == certificate_id]
            return found if len(found) >= count else []

        found: list[Any] = await eventually(arrived, timeout=timeout, interval=0.2, what=f"outcome of {certificate_id}")
        return found


@pytest.fixture
async def feed(dispatch_settings: DispatchSettings, factory: CertificateFactory) -> AsyncIterator[Feed]:
    await ensure_topics(dispatch_settings, [CONSENT_RELEASED, PORTAL_DISPATCH_REQUESTS, DISPATCH_OUTCOMES])
    f = Feed(dispatch_settings, factory)
    await f.producer.start()
    try:
        yield f
    finally:
        await f.producer.stop()


async def ledger(settings: DispatchSettings, certificate_id: str | None = None) -> list[dict[str, Any]]:
    async with connect(settings.database_url, settings.db_schema) as conn:
        rows = await conn.fetch(
            "SELECT * FROM sends WHERE $1::text IS NULL OR certificate_id = $1 ORDER BY id", certificate_id
        )
        return [dict(r) for r in rows]


@pytest.fixture
def no_processes() -> Iterator[list[ServiceProcess]]:
    """Processes a test starts, killed at its end whatever happens."""
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        if process.process is not None:
            process.kill()
