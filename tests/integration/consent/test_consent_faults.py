"""Consent SIGKILLed at random points while 1,000 intake events stream through the gate.

Checked by counting: every certificate of a consenting citizen released exactly once (one release event; a
redelivery of that same event after a kill between publish and outbox delete is counted apart and is harmless
to idempotent consumers), no certificate of a citizen without consent released, nothing lost.
"""

from __future__ import annotations

import functools
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import httpx
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased
from schemas.topics import CONSENT_RELEASED, INTAKE_CERTIFICATES
from services.consent.settings import ConsentSettings
from services.kit.citizen import citizen_ref
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from tests.harness import ServiceProcess, connect, eventually, outbox_empty, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AUTH = {"Authorization": "Bearer dev-portal-to-consent"}


def consent_process(settings: ConsentSettings) -> ServiceProcess:
    env = {
        "CONSENT_DB_SCHEMA": settings.db_schema,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "LOG_LEVEL": "WARNING",
    }
    return ServiceProcess("minaintyg-consent", env, port_env="CONSENT_PORT")


async def ensure_consent_schema(settings: ConsentSettings) -> None:
    """Migrate before the first start, so progress can be polled from the first event on."""
    from services.consent.app import MIGRATIONS
    from services.kit.db import migrate

    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)


async def processed_at_least(settings: ConsentSettings, count: int) -> bool:
    async with connect(settings.database_url, settings.db_schema) as conn:
        done: int = await conn.fetchval("SELECT count(*) FROM processed_events")
        return done >= count


async def test_sigkill_at_random_points_during_1000_events(
    base_settings: ServiceSettings, schema: str, unique: str
) -> None:
    settings = ConsentSettings(db_schema=schema, topic_prefix=f"t{unique}.", environment="test")
    rng = random.Random(int(unique, 16))
    factory = CertificateFactory(seed=rng.randrange(2**31))
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    persons = factory.persons[:20]
    refs = [citizen_ref(p.personnummer, key) for p in persons]
    consenting_early, consenting_late = set(refs[:8]), set(refs[8:14])  # the last six never consent

    await ensure_topics(settings, [INTAKE_CERTIFICATES])
    producer = make_producer(settings, client_id="test-intake")
    await producer.start()
    issued_by: dict[str, str] = {}
    try:
        for _ in range(1000):
            i = rng.randrange(len(persons))
            cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate(person=persons[i]))
            data = CertificateIssued(
                citizen_ref=refs[i], certificate=cert, test_patient=False, received_at=datetime.now(UTC)
            )
            envelope = new_envelope(data, source="test", time=datetime.now(UTC), correlation_id="k")
            issued_by[cert.id] = refs[i]
            await producer.send(settings.topic(INTAKE_CERTIFICATES.name), value=encode(envelope), key=refs[i].encode())
        await producer.flush()
    finally:
        await producer.stop()

    kills = 0
    await ensure_consent_schema(settings)
    process = consent_process(settings)
    try:
        await process.start()
        async with httpx.AsyncClient(base_url=process.url, headers=AUTH, timeout=30) as client:
            for ref in consenting_early:
                response = await client.post(f"/internal/v1/citizens/{ref}/consent", json={"text_version": "2025-1"})
                assert response.status_code == 200
        kill_points = sorted(rng.sample(range(20, 980), 6))  # after how many processed events each kill comes
        for round_, point in enumerate(kill_points):
            await eventually(
                functools.partial(processed_at_least, settings, point), timeout=120, interval=0.01, what=f"{point}"
            )
            process.kill()
            kills += 1
            await process.start()
            if round_ == 2:
                async with httpx.AsyncClient(base_url=process.url, headers=AUTH, timeout=60) as client:
                    for ref in consenting_late:
                        response = await client.post(
                            f"/internal/v1/citizens/{ref}/consent", json={"text_version": "2025-1"}
                        )
                        assert response.status_code == 200

        expected = {cid for cid, ref in issued_by.items() if ref in consenting_early | consenting_late}

        async def all_released() -> bool:
            if not await outbox_empty(settings.database_url, schema):
                return False
            records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CONSENT_RELEASED.name))
            ids = {decode(r.value).subject for r in records}
            return expected <= ids

        await eventually(all_released, timeout=120, interval=0.5, what="every consenting citizen's release")
        records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CONSENT_RELEASED.name))
    finally:
        process.stop(timeout=30)

    releases = [decode(r.value) for r in records]
    events_per_certificate: dict[str, set[str]] = defaultdict(set)
    deliveries: Counter[str] = Counter()
    for e in releases:
        assert isinstance(e.data, CertificateReleased)
        events_per_certificate[e.data.certificate.id].add(str(e.id))
        deliveries[e.data.certificate.id] += 1
    released = set(events_per_certificate)
    duplicated_releases = sum(len(v) - 1 for v in events_per_certificate.values())
    redeliveries = sum(deliveries.values()) - len(deliveries)
    lost = len(expected - released)
    wrongly_released = len(released - expected)
    print(
        f"\n[consent-sigkill] events_in=1000 kills={kills} at_processed={kill_points} "
        f"expected_releases={len(expected)} "
        f"released={len(released)} lost={lost} duplicated_releases={duplicated_releases} "
        f"redeliveries_same_event={redeliveries} released_without_consent={wrongly_released}"
    )
    assert lost == 0
    assert duplicated_releases == 0
    assert wrongly_released == 0
