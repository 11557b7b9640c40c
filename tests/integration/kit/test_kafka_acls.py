"""The attack first: a client that reaches the broker without a login, with a wrong password, or logged in as one
service and trying what another service owns (the portal writing a fake `consent.released`, stats reading intake's
certificates, a service joining another's consumer group or creating its topics). Against the secured local broker,
with each service's real principal and the ACLs of schemas/kafka_access.py (given here for this test's topic prefix,
the same table the set-up provisions): every probe is allowed exactly when the table says so.

The probes use librdkafka (confluent-kafka), a Kafka client independent of the services' aiokafka, so a refusal is
the broker's, read from its error code; the services' own clients are tried on the cases the issue names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import KafkaError, Producer
from pydantic import SecretStr

from deploy.local.infra import LOCAL_SECURITY
from deploy.local.kafka_security import create_grants, delete_grants
from schemas.kafka_access import PRINCIPALS, SERVICES, Grant, all_grants
from schemas.topics import ALL_TOPICS, CONSENT_RELEASED, INTAKE_CERTIFICATES, PORTAL_DISPATCH_REQUESTS, dead_letter
from services.kit.kafka import client_options, ensure_topics, make_producer
from services.kit.settings import ServiceSettings

TOPICS = [name for spec in ALL_TOPICS for name in (spec.name, dead_letter(spec).name)]


@pytest.fixture
def secured(base_settings: ServiceSettings) -> ServiceSettings:
    if base_settings.kafka_security_protocol != "SASL_SSL":
        pytest.fail(
            f"the suite runs on the secured broker: KAFKA_SECURITY_PROTOCOL is {base_settings.kafka_security_protocol}"
        )
    if not LOCAL_SECURITY.passwords_file.exists():
        pytest.skip("the services' passwords are those of the local set-up; this broker was provisioned elsewhere")
    return base_settings


@pytest.fixture
async def granted(secured: ServiceSettings, unique: str) -> AsyncIterator[str]:
    """This test's copy of every contract topic (one partition, one record each) and the table's ACLs on them."""
    prefix = f"t{unique}."
    # The read probes' own consumer groups (librdkafka consumes with a group), so a refusal is about the topic.
    probes = [Grant(principal, "group", f"{prefix}probe-{principal}", "Read") for principal in PRINCIPALS]
    grants = all_grants(prefix) + probes
    await asyncio.to_thread(create_grants, LOCAL_SECURITY, secured.kafka_bootstrap_servers, grants)
    admin = AIOKafkaAdminClient(**client_options(secured))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + name, 1, secured.kafka_replication_factor) for name in TOPICS])
    finally:
        await admin.close()
    producer = make_producer(secured, client_id="acl-seed")
    await producer.start()
    try:
        for name in TOPICS:
            await producer.send_and_wait(prefix + name, b"seed", key=b"k")
    finally:
        await producer.stop()
    try:
        yield prefix
    finally:
        await asyncio.to_thread(delete_grants, LOCAL_SECURITY, secured.kafka_bootstrap_servers, grants)


def as_principal(settings: ServiceSettings, principal: str) -> ServiceSettings:
    return settings.model_copy(update=_login(principal))


def _login(principal: str) -> dict[str, Any]:
    return {"kafka_sasl_username": principal, "kafka_sasl_password": SecretStr(LOCAL_SECURITY.password(principal))}


def probe_writes(bootstrap: str, principal: str, topics: list[str]) -> dict[str, int]:
    """librdkafka produces one record to each topic; the error code of each delivery (0: written)."""
    producer = Producer({**LOCAL_SECURITY.librdkafka_config(bootstrap, principal), "message.timeout.ms": 15000})
    outcome: dict[str, int] = {}

    def delivered(error: KafkaError | None, message: Any) -> None:
        outcome[message.topic()] = error.code() if error is not None else 0

    for topic in topics:
        producer.produce(topic, b"probe", on_delivery=delivered)
    producer.flush(30)
    return outcome


def probe_read(bootstrap: str, principal: str, topic: str, prefix: str) -> int | None:
    """librdkafka fetches partition 0 of `topic` from the start: 0 when it reads the seed record, else the error
    code of the metadata or the fetch (None: neither within 10 s)."""
    from confluent_kafka import OFFSET_BEGINNING
    from confluent_kafka import TopicPartition as RdPartition

    config = {**LOCAL_SECURITY.librdkafka_config(bootstrap, principal), "group.id": f"{prefix}probe-{principal}",
              "enable.auto.commit": False}  # fmt: skip
    consumer = RdConsumer(config)
    try:
        # Without Describe the topic is not in the metadata at all (librdkafka then waits silently): ask for it.
        described = consumer.list_topics(topic, timeout=10).topics[topic].error
        if described is not None:
            refused: int = described.code()
            return refused
        consumer.assign([RdPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(40):
            message = consumer.poll(0.25)
            if message is None:
                continue
            error = message.error()
            if error is None:
                return 0
            if error.code() != KafkaError._PARTITION_EOF:
                code: int = error.code()
                return code
        return None
    finally:
        consumer.close()


async def test_without_a_login_the_broker_refuses(secured: ServiceSettings) -> None:
    wrong = secured.model_copy(
        update={"kafka_sasl_username": "stats", "kafka_sasl_password": SecretStr("not-the-password-" + "x" * 20)}
    )
    attempts = {
        "plaintext": {"bootstrap_servers": secured.kafka_bootstrap_servers},
        "TLS, no login": {**client_options(secured), "security_protocol": "SSL"},
        "wrong password": client_options(wrong),
        "unknown user": {**client_options(secured), "sasl_plain_username": "mallory"},
    }
    for name, options in attempts.items():
        for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password") if name == "TLS, no login" else ():
            options.pop(key, None)
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=5000)
        with pytest.raises(KafkaConnectionError):
            await admin.start()  # bootstrapping is the first request: refused before any metadata
        await admin.close()


async def test_each_service_may_write_exactly_its_topics(granted: str, secured: ServiceSettings) -> None:
    topics = [granted + name for name in TOPICS]
    for access in SERVICES:
        allowed = {granted + s.name for s in access.produces} | {granted + dead_letter(s).name for s in access.consumes}
        outcome = await asyncio.to_thread(probe_writes, secured.kafka_bootstrap_servers, access.principal, topics)
        assert set(outcome) == set(topics), access.principal
        for topic in topics:
            expected = 0 if topic in allowed else KafkaError.TOPIC_AUTHORIZATION_FAILED
            assert outcome[topic] == expected, f"{access.principal} writing {topic}: error {outcome[topic]}"


async def test_each_service_may_read_exactly_what_it_consumes(granted: str, secured: ServiceSettings) -> None:
    topics = [granted + name for name in TOPICS]
    pairs = [(access, topic) for access in SERVICES for topic in topics]
    gate = asyncio.Semaphore(4)

    async def probe(principal: str, topic: str) -> int | None:
        async with gate:
            for _ in range(3):  # a probe that saw neither (its connection dropped on a busy machine) is tried again
                outcome = await asyncio.to_thread(
                    probe_read, secured.kafka_bootstrap_servers, principal, topic, granted
                )
                if outcome is not None:
                    return outcome
            return None

    outcomes = await asyncio.gather(*(probe(a.principal, t) for a, t in pairs))
    for (access, topic), outcome in zip(pairs, outcomes, strict=True):
        allowed = {granted + s.name for s in access.consumes}
        expected = 0 if topic in allowed else KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert outcome == expected, f"{access.principal} reading {topic}: {outcome}"


async def test_the_services_own_clients_are_refused_what_others_own(granted: str, secured: ServiceSettings) -> None:
    # The portal forging a released certificate (shown in a citizen's portal) or a withdrawal (erasing a citizen).
    portal = make_producer(as_principal(secured, "portal"), client_id="forger")
    await portal.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await portal.send_and_wait(granted + CONSENT_RELEASED.name, b"forged", key=b"k")
        with pytest.raises(TopicAuthorizationFailedError):
            await portal.send_and_wait(granted + INTAKE_CERTIFICATES.name, b"forged", key=b"k")
        await portal.send_and_wait(granted + PORTAL_DISPATCH_REQUESTS.name, b"own", key=b"k")  # its own: allowed
    finally:
        await portal.stop()
    # Stats joining consent's consumer group (committing its offsets would make consent skip certificates).
    stats = AIOKafkaConsumer(**client_options(as_principal(secured, "stats")), group_id=granted + "consent-gate",
                             enable_auto_commit=False)  # fmt: skip
    await stats.start()
    try:
        tp = TopicPartition(granted + CONSENT_RELEASED.name, 0)
        stats.assign([tp])
        with pytest.raises(GroupAuthorizationFailedError):
            await stats.commit({tp: OffsetAndMetadata(1, "")})
    finally:
        await stats.stop()


async def test_only_the_owner_creates_a_topic(secured: ServiceSettings, unique: str) -> None:
    prefix = f"t{unique}."
    grants = all_grants(prefix)
    await asyncio.to_thread(create_grants, LOCAL_SECURITY, secured.kafka_bootstrap_servers, grants)
    try:
        stats = as_principal(secured, "stats").model_copy(update={"topic_prefix": prefix})
        # Stats may not create consent's released topic: it waits for the owner instead (bounded here).
        with pytest.raises(Exception, match="not allowed to create"):
            await ensure_topics(stats, [CONSENT_RELEASED], deadline_seconds=2)
        consent = as_principal(secured, "consent").model_copy(update={"topic_prefix": prefix})
        await ensure_topics(consent, [CONSENT_RELEASED])
        await ensure_topics(stats, [CONSENT_RELEASED, dead_letter(CONSENT_RELEASED)])  # exists now; its DLQ is its own
    finally:
        await asyncio.to_thread(delete_grants, LOCAL_SECURITY, secured.kafka_bootstrap_servers, grants)


def test_every_principal_has_a_password() -> None:
    for principal in PRINCIPALS:
        assert len(LOCAL_SECURITY.password(principal)) >= 32
