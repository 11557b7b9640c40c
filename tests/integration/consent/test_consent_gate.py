"""Consent's gate against the real broker and database: intake events in, releases out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, decode, encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased, CertificateRevoked, EventData
from schemas.topics import CONSENT_EVENTS, CONSENT_RELEASED, INTAKE_CERTIFICATES, dead_letter
from services.consent.app import create_app
from services.consent.handlers import Gate, on_intake_event
from services.consent.settings import ConsentSettings
from services.kit.citizen import citizen_ref
from services.kit.consumer import IdempotentConsumer
from services.kit.kafka import ensure_topics, make_producer
from services.kit.service import app_state
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from tests.harness import eventually, in_process, outbox_empty, read_topic

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer dev-portal-to-consent"}
TEXT = "2025-1"


@pytest.fixture
def consent_settings(base_settings: ServiceSettings, schema: str, unique: str) -> ConsentSettings:
    return ConsentSettings(db_schema=schema, topic_prefix=f"t{unique}.", environment="test", log_json=False)


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: FastAPI

    @property
    def gate(self) -> Gate:
        return app_state(self.app, Gate)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)


@pytest.fixture
async def consent_client(consent_settings: ConsentSettings) -> AsyncIterator[Harness]:
    app = create_app(consent_settings)
    async with in_process(app, "http://c") as client:
        yield Harness(client, app)


@pytest.fixture
async def intake_producer(consent_settings: ConsentSettings) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(consent_settings, [INTAKE_CERTIFICATES])
    producer = make_producer(consent_settings, client_id="test-intake")
    await producer.start()
    yield producer
    await producer.stop()


class Citizen:
    def __init__(self, factory: CertificateFactory, index: int, settings: ConsentSettings) -> None:
        self.person = factory.persons[index]
        self.ref = citizen_ref(self.person.personnummer, CitizenRefKeySettings().citizen_ref_key.get_secret_value())
        self.factory = factory

    def issued(self) -> CertificateIssued:
        cert = CERTIFICATE_ADAPTER.validate_python(self.factory.certificate(person=self.person))
        return CertificateIssued(
            citizen_ref=self.ref, certificate=cert, test_patient=self.person.test_patient, received_at=datetime.now(UTC)
        )


async def publish(producer: AIOKafkaProducer, settings: ConsentSettings, data: EventData, ref: str) -> Envelope:
    envelope = new_envelope(data, source="test-intake", time=datetime.now(UTC), correlation_id="t")
    await (await producer.send(settings.topic(INTAKE_CERTIFICATES.name), value=encode(envelope), key=ref.encode()))
    return envelope


async def events(settings: ConsentSettings, topic: str) -> list[Envelope]:
    await eventually(lambda: outbox_empty(settings.database_url, settings.db_schema), what="consent's outbox to drain")
    return [decode(r.value) for r in await read_topic(settings.kafka_bootstrap_servers, settings.topic(topic))]


async def held(client: Harness, settings: ConsentSettings, expected: int) -> bool:
    gate = client.gate
    n: int = await gate.pool.fetchval("SELECT count(*) FROM certificates WHERE status = 'held'")
    return n == expected


async def status_is(client: Harness, certificate_id: str, status: str) -> bool:
    found = await client.gate.pool.fetchval("SELECT status FROM certificates WHERE id = $1", certificate_id)
    return bool(found == status)


def released_ids(envelopes: Sequence[Envelope], ref: str | None = None) -> list[str]:
    return [
        e.data.certificate.id
        for e in envelopes
        if isinstance(e.data, CertificateReleased) and (ref is None or e.data.citizen_ref == ref)
    ]


async def test_consent_after_three_certificates_releases_them_in_order_then_withdraw_and_reconsent(
    consent_client: Harness,
    consent_settings: ConsentSettings,
    intake_producer: AIOKafkaProducer,
    factory: CertificateFactory,
) -> None:
    anna = Citizen(factory, 0, consent_settings)
    first = [anna.issued() for _ in range(3)]
    for data in first:
        await publish(intake_producer, consent_settings, data, anna.ref)
    await eventually(lambda: held(consent_client, consent_settings, 3), what="three held certificates")
    assert released_ids(await events(consent_settings, CONSENT_RELEASED.name)) == []

    url = f"/internal/v1/citizens/{anna.ref}/consent"
    given = await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)
    assert given.status_code == 200, given.text
    assert given.json() == {"outcome": "given", "released": 3}
    again = await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)
    assert again.json() == {"outcome": "already_given", "released": 0}

    released = await events(consent_settings, CONSENT_RELEASED.name)
    assert released_ids(released) == [d.certificate.id for d in first]  # exactly three, in issue order
    assert all(r.data.citizen_ref == anna.ref for r in released)  # type: ignore[attr-defined]

    # While consent is given, a new certificate is released at once.
    fourth = anna.issued()
    await publish(intake_producer, consent_settings, fourth, anna.ref)
    await eventually(lambda: _released_count(consent_settings, 4), what="the fourth certificate to be released")

    withdrawn = await consent_client.post(f"{url}/withdrawal", headers=AUTH)
    assert withdrawn.json() == {"outcome": "withdrawn", "generation": 2}
    again_withdrawn = await consent_client.post(f"{url}/withdrawal", headers=AUTH)
    assert again_withdrawn.json() == {"outcome": "not_given", "generation": 2}
    after_withdrawal = await events(consent_settings, CONSENT_RELEASED.name)
    assert after_withdrawal[-1].type == "citizen.data_withdrawn"
    # Every event carries the consent generation it was made in: releases 1, the withdrawal 2.
    assert [e.data.consent_generation for e in after_withdrawal] == [1, 1, 1, 1, 2]  # type: ignore[attr-defined]

    later = [anna.issued() for _ in range(2)]
    for data in later:
        await publish(intake_producer, consent_settings, data, anna.ref)
    await eventually(lambda: held(consent_client, consent_settings, 6), what="everything held again")
    assert len(released_ids(await events(consent_settings, CONSENT_RELEASED.name))) == 4  # nothing new released

    regiven = await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)
    assert regiven.json() == {"outcome": "given", "released": 6}  # the service is restored with everything
    final = await events(consent_settings, CONSENT_RELEASED.name)
    restored = released_ids(final[len(after_withdrawal) :])
    assert restored == [d.certificate.id for d in [*first, fourth, *later]]
    assert {e.data.consent_generation for e in final[len(after_withdrawal) :]} == {3}  # type: ignore[attr-defined]

    consent_events = await events(consent_settings, CONSENT_EVENTS.name)
    assert [e.type for e in consent_events] == ["consent.given", "consent.withdrawn", "consent.given"]
    view = (await consent_client.get(url, headers=AUTH)).json()
    assert view["state"] == "given"
    assert view["generation"] == 3
    assert view["held_retention_days"] == consent_settings.held_retention_days
    assert [h["action"] for h in view["history"]] == ["given", "withdrawn", "given"]
    assert all(h["text_version"] == TEXT for h in view["history"])


async def _released_count(settings: ConsentSettings, expected: int) -> bool:
    return len(released_ids(await events(settings, CONSENT_RELEASED.name))) == expected


async def test_revocations_and_test_patients(
    consent_client: Harness,
    consent_settings: ConsentSettings,
    intake_producer: AIOKafkaProducer,
    factory: CertificateFactory,
) -> None:
    bo = Citizen(factory, 1, consent_settings)
    kept, dropped, forwarded = bo.issued(), bo.issued(), bo.issued()
    for data in (kept, dropped):
        await publish(intake_producer, consent_settings, data, bo.ref)
    revoke = CertificateRevoked(
        citizen_ref=bo.ref,
        certificate_id=dropped.certificate.id,
        certificate_type="LISJP",
        revoked_at=datetime.now(UTC),
    )
    await publish(intake_producer, consent_settings, revoke, bo.ref)  # held copy dropped, nothing emitted
    await eventually(lambda: status_is(consent_client, dropped.certificate.id, "revoked"), what="the revocation")
    assert await held(consent_client, consent_settings, 1)  # the revoked held copy went
    url = f"/internal/v1/citizens/{bo.ref}/consent"
    assert (await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)).json()["released"] == 1

    test_person = Citizen(factory, 2, consent_settings)
    flagged = test_person.issued().model_copy(update={"test_patient": True})
    await consent_client.post(
        f"/internal/v1/citizens/{test_person.ref}/consent", json={"text_version": TEXT}, headers=AUTH
    )
    await publish(intake_producer, consent_settings, flagged, test_person.ref)
    await publish(intake_producer, consent_settings, forwarded, bo.ref)
    revoke_released = revoke.model_copy(update={"certificate_id": forwarded.certificate.id})
    await publish(intake_producer, consent_settings, revoke_released, bo.ref)

    async def settled() -> list[Envelope] | None:
        # Two citizens, maybe two partitions, processed concurrently: wait for both outcomes.
        out = await events(consent_settings, CONSENT_RELEASED.name)
        revoked = any(e.type == "certificate.revoked" for e in out)
        return out if revoked and flagged.certificate.id in released_ids(out) else None

    out = await eventually(settled, what="the forwarded revocation")
    assert set(released_ids(out)) == {kept.certificate.id, forwarded.certificate.id, flagged.certificate.id}
    revocations = [e.data for e in out if isinstance(e.data, CertificateRevoked)]
    assert [r.certificate_id for r in revocations] == [forwarded.certificate.id]
    releases = {e.data.certificate.id: e.data for e in out if isinstance(e.data, CertificateReleased)}
    assert releases[flagged.certificate.id].test_patient is True  # released like anyone, flag kept


async def test_replay_from_offset_zero_releases_nothing_new(
    consent_client: Harness,
    consent_settings: ConsentSettings,
    intake_producer: AIOKafkaProducer,
    factory: CertificateFactory,
) -> None:
    citizens = [Citizen(factory, i, consent_settings) for i in range(3)]
    for c in citizens[:2]:
        await consent_client.post(f"/internal/v1/citizens/{c.ref}/consent", json={"text_version": TEXT}, headers=AUTH)
    for i in range(30):
        c = citizens[i % 3]
        await publish(intake_producer, consent_settings, c.issued(), c.ref)
    await eventually(lambda: _released_count(consent_settings, 20), what="20 releases")
    await eventually(lambda: held(consent_client, consent_settings, 10), what="10 held")

    gate = consent_client.gate
    replay = IdempotentConsumer(
        consent_settings, gate.pool, name="consent-gate", topics=[INTAKE_CERTIFICATES],
        handler=functools.partial(on_intake_event, gate), group_id="consent-gate-replay",
    )  # fmt: skip
    task = asyncio.create_task(replay.run())
    try:
        from services.kit.consumer import CONSUMED

        def duplicates() -> float:
            sample = CONSUMED.labels("consent-gate", consent_settings.topic(INTAKE_CERTIFICATES.name), "duplicate")
            return float(sample._value.get())

        before = duplicates()

        async def replayed() -> bool:
            return duplicates() - before >= 30

        await eventually(replayed, what="the replay to read all 30 events")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(released_ids(await events(consent_settings, CONSENT_RELEASED.name))) == 20


async def test_bad_input(
    consent_client: Harness,
    consent_settings: ConsentSettings,
    intake_producer: AIOKafkaProducer,
    factory: CertificateFactory,
) -> None:
    ref = Citizen(factory, 3, consent_settings).ref
    url = f"/internal/v1/citizens/{ref}/consent"
    assert (await consent_client.get(url)).status_code == 401
    assert (await consent_client.post(url, json={"text_version": TEXT})).status_code == 401
    wrong_token = {"Authorization": "Bearer dev-platform-secret"}
    assert (await consent_client.post(f"{url}/withdrawal", headers=wrong_token)).status_code == 401

    outdated = await consent_client.post(url, json={"text_version": "2019-1"}, headers=AUTH)
    assert outdated.status_code == 422
    assert outdated.json()["problems"][0]["path"] == "text_version"
    missing = await consent_client.post(url, json={}, headers=AUTH)
    assert missing.status_code == 422
    malformed_ref = await consent_client.get("/internal/v1/citizens/191212121212/consent", headers=AUTH)
    assert malformed_ref.status_code == 422
    unknown = await consent_client.get(url, headers=AUTH)
    assert unknown.status_code == 200
    assert unknown.json()["state"] == "none"
    assert unknown.json()["history"] == []

    # Malformed events go to the dead-letter topic and the gate goes on.
    topic = consent_settings.topic(INTAKE_CERTIFICATES.name)
    await (await intake_producer.send(topic, value=b"{broken", key=ref.encode()))
    await (await intake_producer.send(topic, value=b'{"type": "certificate.issued", "dataschema": "x:v1"}', key=b"k"))
    good = Citizen(factory, 4, consent_settings)
    await publish(intake_producer, consent_settings, good.issued(), good.ref)
    await eventually(lambda: held(consent_client, consent_settings, 1), what="the good event after two bad ones")
    dlq_topic = consent_settings.topic(dead_letter(INTAKE_CERTIFICATES).name)

    async def two_dead_letters() -> list[Any] | None:
        # Partitions are processed concurrently: the bad events' partitions may finish after the good one's.
        records = await read_topic(consent_settings.kafka_bootstrap_servers, dlq_topic)
        return records if len(records) >= 2 else None

    dead = await eventually(two_dead_letters, what="both malformed events dead-lettered")
    assert len(dead) == 2
    assert {dict(r.headers)["dlq.consumer"] for r in dead} == {b"consent-gate"}


async def test_retention_purges_held_certificates_but_still_forwards_late_revocations(
    consent_client: Harness,
    consent_settings: ConsentSettings,
    intake_producer: AIOKafkaProducer,
    factory: CertificateFactory,
) -> None:
    from datetime import timedelta

    from services.consent import repo

    never = Citizen(factory, 5, consent_settings)  # never consents
    former = Citizen(factory, 6, consent_settings)  # consents, then withdraws
    held_only, released_once = never.issued(), former.issued()
    url = f"/internal/v1/citizens/{former.ref}/consent"
    await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)
    await publish(intake_producer, consent_settings, held_only, never.ref)
    await publish(intake_producer, consent_settings, released_once, former.ref)
    await eventually(lambda: _released_count(consent_settings, 1), what="the consenting citizen's release")
    await consent_client.post(f"{url}/withdrawal", headers=AUTH)
    await eventually(lambda: held(consent_client, consent_settings, 2), what="both held")

    purged = await repo.purge_expired_held(consent_client.gate.pool, datetime.now(UTC) + timedelta(days=1))
    assert purged == 2
    rows = {
        r["id"]: (r["status"], r["document"])
        for r in await consent_client.gate.pool.fetch("SELECT id, status, document FROM certificates")
    }
    assert held_only.certificate.id not in rows  # never released: gone
    assert rows[released_once.certificate.id] == ("purged", None)  # no personal data left, the fact kept

    for cert in (held_only, released_once):
        revoke = CertificateRevoked(
            citizen_ref=cert.citizen_ref,
            certificate_id=cert.certificate.id,
            certificate_type="LISJP",
            revoked_at=datetime.now(UTC),
        )
        await publish(intake_producer, consent_settings, revoke, cert.citizen_ref)

    async def forwarded() -> list[str] | None:
        out = await events(consent_settings, CONSENT_RELEASED.name)
        ids = [e.data.certificate_id for e in out if isinstance(e.data, CertificateRevoked)]
        return ids or None

    assert await eventually(forwarded, what="the late revocation") == [released_once.certificate.id]
    regiven = await consent_client.post(url, json={"text_version": TEXT}, headers=AUTH)
    assert regiven.json() == {"outcome": "given", "released": 0}  # nothing purged or revoked comes back
