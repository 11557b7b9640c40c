"""Fixtures for the portal against the real Kafka and PostgreSQL: the portal and the consent service in-process,
a producer that plays consent's releases and dispatch's outcomes, and citizens with sessions."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from deploy.simulators.platform.generator import CertificateFactory, Person
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, encode, new_envelope
from schemas.events import (
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    DispatchFailed,
    DispatchSucceeded,
    EventData,
)
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS
from services.consent.app import create_app as create_consent_app
from services.consent.settings import ConsentSettings
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from services.portal import repo
from services.portal.app import create_app
from services.portal.security import SESSION_COOKIE, new_token, token_hash
from services.portal.settings import PortalSettings
from tests.harness import drop_schema, running, schema_name, topic_prefix

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def portal_overrides() -> dict[str, Any]:
    """Settings a test module changes (the login tests point the portal at the in-process IdP)."""
    return {}


@pytest.fixture
def extra_transports() -> dict[str, httpx.AsyncBaseTransport]:
    """Other in-process servers the test client (playing the browser) reaches, by URL prefix."""
    return {}


@pytest.fixture
def idp_transport() -> httpx.AsyncBaseTransport | None:
    """How the portal reaches the identity provider (None: over the network)."""
    return None


@pytest.fixture
def portal_settings(
    base_settings: ServiceSettings, schema: str, unique: str, portal_overrides: dict[str, Any]
) -> PortalSettings:
    values: dict[str, Any] = {"consent_url": "http://consent", **portal_overrides}
    return PortalSettings(db_schema=schema, topic_prefix=topic_prefix(unique), environment="test", log_json=False,
                          **values)  # fmt: skip


@pytest.fixture
async def consent_schema(base_settings: ServiceSettings, unique: str) -> AsyncIterator[str]:
    name = f"{schema_name(unique)}_consent"
    yield name
    await drop_schema(base_settings.database_url, name)


@dataclass
class Citizen:
    person: Person
    ref: str
    token: str = ""
    csrf: str = ""
    certificates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cookie(self) -> dict[str, str]:
        # httpx does not send Secure cookies over plain http (the test transport); the browser would.
        return {"Cookie": f"{SESSION_COOKIE}={self.token}"}

    def posting(self, origin: str = ORIGIN) -> dict[str, str]:
        """Headers of a same-origin state change from our own pages."""
        return {**self.cookie, "Origin": origin, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": self.csrf}


@dataclass
class PortalHarness:
    settings: PortalSettings
    app: FastAPI
    client: httpx.AsyncClient
    consent: httpx.AsyncClient
    producer: AIOKafkaProducer
    factory: CertificateFactory
    pool: asyncpg.Pool

    def citizen(self, index: int) -> Citizen:
        person = self.factory.persons[index]
        return Citizen(person, citizen_ref(person.personnummer, self.settings.citizen_ref_key.get_secret_value()))

    async def login(self, citizen: Citizen, *, consent: bool = True) -> Citizen:
        """A session as the OIDC callback creates it (the login flow itself has its own tests)."""
        citizen.token, citizen.csrf = new_token(), new_token()
        await repo.create_session(
            self.pool, token_hash(citizen.token), csrf=citizen.csrf, citizen_ref=citizen.ref,
            personnummer=citizen.person.personnummer, given_name=citizen.person.given_name,
            family_name=citizen.person.family_name, id_token="", consent_given=consent, now=datetime.now(UTC),
        )  # fmt: skip
        return citizen

    async def publish(self, topic: str, key: str, data: EventData) -> Envelope:
        envelope = new_envelope(data, source="test", time=datetime.now(UTC), correlation_id=secrets.token_hex(8))
        await self.producer.send_and_wait(self.settings.topic(topic), encode(envelope), key=key.encode())
        return envelope

    async def release(
        self,
        citizen: Citizen,
        cert_type: str = "LISJP",
        *,
        test_patient: bool = False,
        generation: int = 0,
        **overrides: Any,
    ) -> dict[str, Any]:
        document = self.factory.certificate(cert_type, person=citizen.person)
        document.update(overrides)
        certificate = CERTIFICATE_ADAPTER.validate_python(document)
        await self.publish(
            CONSENT_RELEASED.name,
            citizen.ref,
            CertificateReleased(citizen_ref=citizen.ref, certificate=certificate, test_patient=test_patient,
                                released_at=datetime.now(UTC), consent_generation=generation),
        )  # fmt: skip
        citizen.certificates.append(certificate.model_dump(mode="json"))
        return certificate.model_dump(mode="json")

    async def revoke(self, citizen: Citizen, certificate_id: str, cert_type: str = "LISJP") -> None:
        await self.publish(
            CONSENT_RELEASED.name,
            citizen.ref,
            CertificateRevoked(citizen_ref=citizen.ref, certificate_id=certificate_id, certificate_type=cert_type,
                               revoked_at=datetime.now(UTC)),
        )  # fmt: skip

    async def withdrawn(self, citizen: Citizen, generation: int = 0) -> None:
        data = CitizenDataWithdrawn(citizen_ref=citizen.ref, at=datetime.now(UTC), consent_generation=generation)
        await self.publish(CONSENT_RELEASED.name, citizen.ref, data)

    async def outcome(self, citizen: Citizen, certificate_id: str, key: UUID, *, ok: bool = True) -> None:
        data: EventData
        if ok:
            data = DispatchSucceeded(idempotency_key=key, certificate_id=certificate_id, recipient_id="FKASSA",
                                     citizen_ref=citizen.ref, delivered_at=datetime.now(UTC))  # fmt: skip
        else:
            data = DispatchFailed(idempotency_key=key, certificate_id=certificate_id, recipient_id="FKASSA",
                                  citizen_ref=citizen.ref, failed_at=datetime.now(UTC), reason_code="DEADLINE_EXCEEDED",
                                  reason="Försäkringskassan svarade inte i tid.")  # fmt: skip
        await self.publish(DISPATCH_OUTCOMES.name, certificate_id, data)

    async def count(self, table: str, citizen: Citizen) -> int:
        n: int = await self.pool.fetchval(f"SELECT count(*) FROM {table} WHERE citizen_ref = $1", citizen.ref)  # noqa: S608
        return n

    async def listed(self, citizen: Citizen, archived: bool = False) -> list[str]:
        response = await self.client.get(f"/api/v1/certificates?archived={str(archived).lower()}",
                                         headers=citizen.cookie)  # fmt: skip
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()]


@pytest.fixture
async def portal(
    portal_settings: PortalSettings,
    consent_schema: str,
    factory: CertificateFactory,
    unique: str,
    idp_transport: httpx.AsyncBaseTransport | None,
    extra_transports: dict[str, httpx.AsyncBaseTransport],
) -> AsyncIterator[PortalHarness]:
    consent_settings = ConsentSettings(db_schema=consent_schema, topic_prefix=topic_prefix(unique), environment="test",
                                       log_json=False)  # fmt: skip
    consent_app = create_consent_app(consent_settings)
    await ensure_topics(portal_settings, [CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS])
    producer = make_producer(portal_settings, client_id="test-portal-feeder")
    await producer.start()
    try:
        async with running(consent_app) as consent_started:
            consent_transport = httpx.ASGITransport(app=consent_started)
            app = create_app(portal_settings, consent_transport=consent_transport, idp_transport=idp_transport)
            async with running(app) as started:
                origin = portal_settings.public_origin
                mounts = {origin: httpx.ASGITransport(app=started), **extra_transports}
                async with (
                    httpx.AsyncClient(mounts=mounts, base_url=origin) as client,
                    httpx.AsyncClient(transport=consent_transport, base_url="http://consent") as consent_client,
                ):
                    # A pool of the test's own on the portal's schema (the portal migrated it on start).
                    pool = await create_pool(
                        portal_settings.database_url, portal_settings.db_schema, application="test"
                    )
                    try:
                        yield PortalHarness(portal_settings, app, client, consent_client, producer, factory, pool)
                    finally:
                        await pool.close()
    finally:
        await producer.stop()
