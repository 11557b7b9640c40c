"""The attack first: every consumer of a topic may write its dead-letter topic, and the operator's replay publishes
from there as the administrator. Stats (which may not write `consent.released.v1`) writes forged dead letters — an
invented release that names a real source position, one that names another topic, one without a position — and
asks, in effect, the operator to publish them. The replay republishes only a dead letter that is byte for byte the
record at the source position it names (that record, with its own headers), and refuses the rest, saying why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from deploy.local.infra import LOCAL_SECURITY
from deploy.local.kafka_security import create_grants, delete_grants
from schemas.kafka_access import all_grants
from schemas.topics import CONSENT_RELEASED, dead_letter
from services.kit.kafka import ensure_topics, make_producer
from services.kit.settings import ServiceSettings
from tests.harness import read_topic, run_command

pytestmark = pytest.mark.integration


@pytest.fixture
async def prefixed(base_settings: ServiceSettings, unique: str) -> AsyncIterator[ServiceSettings]:
    settings = base_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    grants = all_grants(settings.topic_prefix) if LOCAL_SECURITY.passwords_file.exists() else []
    if grants:
        await asyncio.to_thread(create_grants, LOCAL_SECURITY, settings.kafka_bootstrap_servers, grants)
    await ensure_topics(settings, [CONSENT_RELEASED, dead_letter(CONSENT_RELEASED)])
    try:
        yield settings
    finally:
        if grants:
            await asyncio.to_thread(delete_grants, LOCAL_SECURITY, settings.kafka_bootstrap_servers, grants)


def as_stats(settings: ServiceSettings) -> ServiceSettings:
    if not LOCAL_SECURITY.passwords_file.exists():
        return settings  # another cluster: the attack is the same bytes, written as whoever the suite is
    password = SecretStr(LOCAL_SECURITY.password("stats"))
    return settings.model_copy(update={"kafka_sasl_username": "stats", "kafka_sasl_password": password})


async def test_a_forged_dead_letter_is_not_published_by_the_replay(prefixed: ServiceSettings) -> None:
    source = prefixed.topic(CONSENT_RELEASED.name)
    owner = make_producer(prefixed, client_id="t-owner")
    await owner.start()
    try:
        genuine = await owner.send_and_wait(source, b"genuine release", key=b"ref-1", headers=[("ce_type", b"x")])
    finally:
        await owner.stop()
    attacker = make_producer(as_stats(prefixed), client_id="t-attacker")
    await attacker.start()

    def position(topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        return [("dlq.source.topic", topic.encode()), ("dlq.source.partition", str(partition).encode()),
                ("dlq.source.offset", str(offset).encode()), ("dlq.error", b"x")]  # fmt: skip

    at = (source, genuine.partition, genuine.offset)
    try:
        dlq = source + ".dlq"
        forged = [
            (b"forged release", b"ref-1", [("ce_type", b"x"), *position(*at)]),  # invented bytes, a real position
            (b"genuine release", b"ref-1", [("ce_type", b"certificate.withdrawn"), *position(*at)]),  # its headers
            (b"genuine release", b"ref-1", [("ce_type", b"x"), *position(source, genuine.partition, 99)]),  # nowhere
            (b"genuine release", b"ref-1", [("ce_type", b"x"), *position("intake.certificates.v1", 0, 0)]),
            (b"genuine release", b"ref-1", [("ce_type", b"x")]),  # no position at all
        ]
        for value, key, headers in forged:
            await attacker.send_and_wait(dlq, value, key=key, headers=headers)
        # And one true dead letter: the consumer's copy of the record at its source position.
        await attacker.send_and_wait(dlq, b"genuine release", key=b"ref-1", headers=[("ce_type", b"x"), *position(*at)])
    finally:
        await attacker.stop()
    env = {"MINAINTYG_TOPIC_PREFIX": prefixed.topic_prefix}
    code, out = await run_command(
        "minaintyg-admin", "dlq", "replay", CONSENT_RELEASED.name, "--operator", "ops1", env=env
    )
    assert code == 1, out
    assert "replayed 1 message(s), refused 5" in out
    for reason in ("differs from the record", "no record at", "names the source topic", "does not name its source"):
        assert reason in out, out
    published = await read_topic(prefixed.kafka_bootstrap_servers, source)
    assert [(r.value, r.key, list(r.headers)) for r in published] == [
        (b"genuine release", b"ref-1", [("ce_type", b"x")])
    ] * 2
