"""Nothing stale resurrects data (issue #16): after a citizen withdraws consent, releases made before the withdrawal
come back by every path an event can take — a dead-letter replay (`minaintyg-admin dlq replay`, the real command),
a redelivery (the same event again, and a late one never read before), a statistics rebuild from offset 0 — and
nothing of the citizen reappears in the portal, dispatch or statistics. Consent (the real gate), portal, dispatch
and statistics run in-process against the real Kafka and PostgreSQL. A new consent then brings the certificate
back everywhere (the checks can fail), and the operator's replay and rebuild are in the citizen's access log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER, Certificate
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, INTAKE_CERTIFICATES, PORTAL_DISPATCH_REQUESTS
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.kit.citizen import citizen_ref
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.portal.app import create_app as create_portal
from services.portal.settings import PortalSettings
from services.stats.app import create_app as create_stats
from services.stats.domain import pseudonym
from services.stats.rebuild import rebuild
from services.stats.settings import StatsSettings
from tests.harness import (
    connect,
    dead_lettered,
    drop_schema,
    eventually,
    read_topic,
    run_command,
    running,
    topic_prefix,
)

pytestmark = pytest.mark.integration
OPERATOR = "drift.olle"


@dataclass
class System:
    unique: str
    consent: ConsentSettings
    portal: PortalSettings
    dispatch: DispatchSettings
    stats: StatsSettings

    @property
    def schemas(self) -> list[str]:
        return [s.db_schema for s in (self.consent, self.portal, self.dispatch, self.stats)]

    def released_topic(self) -> str:
        return self.consent.topic(CONSENT_RELEASED.name)


@pytest.fixture
async def system(base_settings: ServiceSettings, unique: str) -> AsyncIterator[System]:
    prefix = topic_prefix(unique)
    common: dict[str, Any] = {"topic_prefix": prefix, "environment": "test", "log_json": False}
    system = System(
        unique,
        ConsentSettings(db_schema=f"t_{unique}_consent", **common),
        PortalSettings(db_schema=f"t_{unique}_portal", consent_url="http://consent", **common),
        DispatchSettings(
            db_schema=f"t_{unique}_dispatch", fk_endpoint="http://127.0.0.1:9", poll_seconds=0.2, **common
        ),
        StatsSettings(db_schema=f"t_{unique}_stats", publisher_enabled=False, **common),
    )
    await ensure_topics(
        system.consent, [INTAKE_CERTIFICATES, CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS]
    )
    try:
        yield system
    finally:
        for schema in system.schemas:
            await drop_schema(base_settings.database_url, schema)


async def _count(settings: ServiceSettings, schema: str, sql: str, *args: object) -> int:
    async with connect(settings.database_url, schema) as conn:
        return int(await conn.fetchval(sql, *args))


async def holdings(system: System, ref: str, certificate_ids: list[str]) -> dict[str, int]:
    """What each service holds of the citizen's certificates (usable data: a copy with content, a fact)."""
    person = pseudonym(ref, system.stats.pseudonym_key.get_secret_value())
    return {
        "portal": await _count(
            system.portal, system.portal.db_schema, "SELECT count(*) FROM certificates WHERE citizen_ref = $1", ref
        ),
        "dispatch": await _count(
            system.dispatch,
            system.dispatch.db_schema,
            "SELECT count(*) FROM certificates WHERE id = ANY($1::text[]) "
            "AND document IS NOT NULL AND status = 'released'",
            certificate_ids,
        ),
        "stats": await _count(
            system.stats, system.stats.db_schema, "SELECT count(*) FROM facts WHERE pseudonym = $1", person
        ),
    }


def released(ref: str, cert: Certificate, generation: int) -> bytes:
    """A release as consent made it in `generation` (one never read by anyone: a fresh event id)."""
    data = CertificateReleased(
        citizen_ref=ref,
        certificate=cert,
        test_patient=False,
        released_at=datetime.now(UTC),
        consent_generation=generation,
    )
    return encode(
        new_envelope(data, source="minaintyg/consent", time=datetime.now(UTC), correlation_id="t", subject=cert.id)
    )


async def test_replay_rebuild_and_redelivery_after_a_withdrawal_bring_nothing_back(
    system: System, base_settings: ServiceSettings
) -> None:
    factory = CertificateFactory(seed=16)
    person = next(p for p in factory.persons if not p.test_patient)
    ref = citizen_ref(person.personnummer, CitizenRefKeySettings().citizen_ref_key.get_secret_value())
    certs = [CERTIFICATE_ADAPTER.validate_python(factory.certificate("LISJP", person=person)) for _ in range(3)]
    held, dead_lettered_cert, late = certs
    ids = [c.id for c in certs]
    producer = make_producer(system.consent, client_id="t-stale")
    await producer.start()
    try:
        async with (
            running(create_consent(system.consent)) as consent_app,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=consent_app),
                base_url="http://consent",
                headers={"Authorization": f"Bearer {system.portal.consent_token.get_secret_value()}"},
            ) as consent,
            running(create_portal(system.portal, consent_transport=httpx.ASGITransport(app=consent_app))),
            running(create_dispatch(system.dispatch)),
        ):
            consent_path = f"/internal/v1/citizens/{ref}/consent"
            issued = CertificateIssued(
                citizen_ref=ref, certificate=held, test_patient=False, received_at=datetime.now(UTC)
            )
            envelope = new_envelope(issued, source="intake", time=datetime.now(UTC), correlation_id="t")
            await producer.send_and_wait(
                system.consent.topic(INTAKE_CERTIFICATES.name), encode(envelope), key=ref.encode()
            )
            given = await consent.post(consent_path, json={"text_version": system.consent.current_text_version})
            assert given.status_code == 200, given.text
            async with running(create_stats(system.stats)):
                await eventually(
                    lambda: _holds(system, ref, ids, {"portal": 1, "dispatch": 1, "stats": 1}),
                    timeout=60,
                    what="the release everywhere",
                )
                [release] = [
                    r
                    for r in await read_topic(base_settings.kafka_bootstrap_servers, system.released_topic())
                    if decode(r.value or b"").type == "certificate.released"
                ]
                assert decode(release.value or b"").data.consent_generation == 1  # type: ignore[attr-defined]

                withdrawn = await consent.post(f"{consent_path}/withdrawal", json={})
                assert withdrawn.json() == {"outcome": "withdrawn", "generation": 2}
                await eventually(
                    lambda: _holds(system, ref, ids, {"portal": 0, "dispatch": 0, "stats": 0}),
                    timeout=60,
                    what="the withdrawal everywhere",
                )

                # Redelivery: the release read before, again; and one made before the withdrawal that nobody read.
                topic = system.released_topic()
                await producer.send_and_wait(topic, release.value, key=ref.encode(), headers=list(release.headers))
                await producer.send_and_wait(topic, released(ref, late, 1), key=ref.encode())
                # A dead letter of a release of before the withdrawal, replayed by an operator with the real command
                # (which republishes the source record the dead letter is a copy of).
                await dead_lettered(producer, topic, released(ref, dead_lettered_cert, 1), ref.encode(), "test")
                code, out = await run_command(
                    "minaintyg-admin",
                    "dlq",
                    "replay",
                    CONSENT_RELEASED.name,
                    "--operator",
                    OPERATOR,
                    env={
                        "MINAINTYG_TOPIC_PREFIX": system.consent.topic_prefix,
                        "PORTAL_DB_SCHEMA": system.portal.db_schema,
                    },
                )
                assert code == 0, out
                assert "replayed 1 message(s)" in out
                marker_ref = citizen_ref("191212121212", CitizenRefKeySettings().citizen_ref_key.get_secret_value())
                other = next(p for p in factory.persons if not p.test_patient and p is not person)
                marker = CERTIFICATE_ADAPTER.validate_python(factory.certificate("LISJP", person=other))
                await producer.send_and_wait(topic, released(marker_ref, marker, 1), key=ref.encode())
                # Everything before the marker (same partition, same order) has been read once the marker is in.
                await eventually(lambda: _has_marker(system, marker.id), timeout=60, what="the marker everywhere")
                assert await holdings(system, ref, ids) == {"portal": 0, "dispatch": 0, "stats": 0}

            # Rebuild: statistics read again from offset 0 (the pre-withdrawal release, the replays) with the stats
            # service stopped; the rebuild is recorded in the access log as the operator's.
            code, out = await run_command(
                "minaintyg-admin",
                "stats",
                "rebuild",
                "--operator",
                OPERATOR,
                env={
                    "MINAINTYG_TOPIC_PREFIX": system.stats.topic_prefix,
                    "STATS_DB_SCHEMA": system.stats.db_schema,
                    "PORTAL_DB_SCHEMA": system.portal.db_schema,
                },
                timeout=180,
            )
            assert code == 0, out
            assert await holdings(system, ref, ids) == {"portal": 0, "dispatch": 0, "stats": 0}
            assert "recorded in 2 citizen(s)' access log" in out  # the citizen's events were read (and dropped)
            result = await rebuild(system.stats, progress=False)  # the same, in-process: still nothing
            assert ref in result.citizens
            assert await holdings(system, ref, ids) == {"portal": 0, "dispatch": 0, "stats": 0}

            # A new consent: the held certificate (only that one) is back everywhere, with the new generation.
            again = await consent.post(consent_path, json={"text_version": system.consent.current_text_version})
            assert again.json()["released"] == 1
            async with running(create_stats(system.stats)):
                await eventually(
                    lambda: _holds(system, ref, ids, {"portal": 1, "dispatch": 1, "stats": 1}),
                    timeout=60,
                    what="the certificate back after a new consent",
                )
            async with connect(system.portal.database_url, system.portal.db_schema) as conn:
                listed = await conn.fetch("SELECT id FROM certificates WHERE citizen_ref = $1", ref)
                logged = await conn.fetch(
                    "SELECT certificate_id, action, actor FROM access_log WHERE citizen_ref = $1 ORDER BY id", ref
                )
            assert [r["id"] for r in listed] == [held.id]
            assert [(r["certificate_id"], r["action"], r["actor"]) for r in logged] == [
                (dead_lettered_cert.id, "operator_dlq_replay", OPERATOR),
                (None, "operator_stats_rebuild", OPERATOR),
            ]
    finally:
        await producer.stop()


async def _holds(system: System, ref: str, ids: list[str], expected: dict[str, int]) -> bool:
    return await holdings(system, ref, ids) == expected


async def _has_marker(system: System, certificate_id: str) -> bool:
    portal = await _count(
        system.portal, system.portal.db_schema, "SELECT count(*) FROM certificates WHERE id = $1", certificate_id
    )
    dispatch = await _count(
        system.dispatch, system.dispatch.db_schema, "SELECT count(*) FROM certificates WHERE id = $1", certificate_id
    )
    stats = await _count(
        system.stats, system.stats.db_schema, "SELECT count(*) FROM facts WHERE certificate_id = $1", certificate_id
    )
    return portal == dispatch == stats == 1
