"""Fixtures for statistics against the real Kafka and PostgreSQL: the service in-process, and released events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory, Person
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, encode, new_envelope
from schemas.events import CertificateReleased, CertificateRevoked, CitizenDataWithdrawn, EventData
from schemas.topics import CONSENT_RELEASED
from services.kit.citizen import citizen_ref
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.stats.app import create_app
from services.stats.settings import StatsSettings
from tests.harness import connect, in_process, topic_prefix


@pytest.fixture
def stats_settings(base_settings: ServiceSettings, schema: str, unique: str) -> StatsSettings:
    return StatsSettings(
        db_schema=schema,
        topic_prefix=topic_prefix(unique),
        environment="test",
        log_json=False,
        publish_interval_seconds=0.5,
        close_after_days=0,
        county_min_cases=10,
        rate_limit="100000/minute",
        max_records=100,
    )


ANALYST = {"Authorization": "Bearer dev-analyst-secret"}


@dataclass
class StatsService:
    client: httpx.AsyncClient
    app: FastAPI

    async def report(self, name: str, **params: str) -> dict[str, Any]:
        """A report as a signed-in analyst gets it (`period` as YYYY-MM, YYYY-Qn or YYYY)."""
        response = await self.get(name, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def get(self, name: str, token: str = "dev-analyst-secret", **params: str) -> httpx.Response:  # noqa: S107
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.get(f"/v1/reports/{name}", params=params, headers=headers)


@dataclass
class Clock:
    """The service's clock in a test: real time unless set."""

    fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)


@contextlib.asynccontextmanager
async def running(settings: StatsSettings, clock: Clock | None = None) -> AsyncIterator[StatsService]:
    app = create_app(settings, clock=clock or Clock())
    async with in_process(app, "http://stats") as client:
        yield StatsService(client, app)


@pytest.fixture
async def stats(stats_settings: StatsSettings) -> AsyncIterator[StatsService]:
    async with running(stats_settings) as service:
        yield service


@dataclass
class Released:
    """Publishes consent.released.v1 events as consent would, and remembers what it published."""

    settings: StatsSettings
    producer: AIOKafkaProducer
    factory: CertificateFactory
    certificates: list[dict[str, Any]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    def ref(self, person: Person) -> str:
        return citizen_ref(person.personnummer, CitizenRefKeySettings().citizen_ref_key.get_secret_value())

    async def publish(self, data: EventData, ref: str) -> Envelope:
        envelope = new_envelope(data, source="test-consent", time=datetime.now(UTC), correlation_id="t")
        topic = self.settings.topic(CONSENT_RELEASED.name)
        await (await self.producer.send(topic, value=encode(envelope), key=ref.encode()))
        self.events.append(envelope)
        return envelope

    async def release(
        self,
        person: Person,
        *,
        cert_type: str | None = "LISJP",
        periods: list[tuple[date, date, int]] | None = None,
        unit_index: int = 0,
        signed: datetime | None = None,
        test_patient: bool | None = None,
        replaces: str | None = None,
        code: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Release a new certificate of the person (or the given one)."""
        if body is None:
            body = self.factory.certificate(cert_type, person=person, unit=CARE_UNITS[unit_index])
        if replaces is not None:
            body["relation"] = {"kind": "REPLACES", "certificate_id": replaces}
        if code is not None:
            body["content"]["diagnoses"] = [{"code": code, "description": "Diagnos"}]
        if periods is not None:
            body["content"]["sick_leave_periods"] = [
                {"degree": d, "start": s.isoformat(), "end": e.isoformat()} for s, e, d in periods
            ]
            if any(d < 100 for _, _, d in periods):
                body["content"]["working_time_arrangement"] = {"recommended": True}
        if signed is not None:
            body["signed_at"] = signed.isoformat()
        certificate = CERTIFICATE_ADAPTER.validate_python(body)
        flag = person.test_patient if test_patient is None else test_patient
        await self.publish(
            CertificateReleased(citizen_ref=self.ref(person), certificate=certificate, test_patient=flag,
                                released_at=datetime.now(UTC)),
            self.ref(person),
        )  # fmt: skip
        self.certificates.append(body)
        return body

    async def revoke(self, person: Person, certificate_id: str, cert_type: str = "LISJP") -> None:
        await self.publish(
            CertificateRevoked(citizen_ref=self.ref(person), certificate_id=certificate_id, certificate_type=cert_type,
                               revoked_at=datetime.now(UTC)),
            self.ref(person),
        )  # fmt: skip

    async def withdraw(self, person: Person) -> None:
        await self.publish(CitizenDataWithdrawn(citizen_ref=self.ref(person), at=datetime.now(UTC)), self.ref(person))


@pytest.fixture
async def released(stats_settings: StatsSettings, factory: CertificateFactory) -> AsyncIterator[Released]:
    await ensure_topics(stats_settings, [CONSENT_RELEASED])
    producer = make_producer(stats_settings, client_id="test-consent")
    await producer.start()
    try:
        yield Released(stats_settings, producer, factory)
    finally:
        await producer.stop()


async def processed(settings: StatsSettings, expected: int) -> bool:
    """Whether the ingest has tracked `expected` events."""
    async with connect(settings.database_url, settings.db_schema) as conn:
        with contextlib.suppress(asyncpg.UndefinedTableError):
            n: int = await conn.fetchval("SELECT count(*) FROM processed_events WHERE consumer = 'stats-ingest'")
            return n >= expected
        return False


def days_ago(n: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=n)


def last_month(day: int) -> date:
    """The given day of the previous calendar month (closed in the tests' settings)."""
    first = datetime.now(UTC).date().replace(day=1)
    return (first - timedelta(days=1)).replace(day=day)


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"
