"""Dispatch against real Kafka, PostgreSQL and the Försäkringskassan simulator over HTTP: sends, refusals,
revocations, a lost answer, a replay of the request topic and a poison message."""

from __future__ import annotations

import httpx
import pytest

from schemas.events import DispatchFailed, DispatchSucceeded
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.dispatch import repo
from services.dispatch.adapters import MEMORY_RECIPIENTS
from services.dispatch.app import create_app
from services.dispatch.bootstrap import DispatchService
from services.dispatch.domain import Recipient
from services.dispatch.settings import DispatchSettings
from services.kit.db import create_pool
from services.kit.kafka import client_options
from services.kit.service import app_state
from tests.harness import connect, eventually, read_topic, running
from tests.integration.dispatch.conftest import Feed, FkSim, ledger

pytestmark = pytest.mark.integration


async def test_a_released_certificate_is_sent_once_and_its_outcome_published(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    key = await feed.request(cert.id, ref)

    [outcome] = await feed.outcome_of(cert.id)
    assert isinstance(outcome, DispatchSucceeded)
    assert outcome.idempotency_key == key
    assert outcome.citizen_ref == ref
    assert outcome.recipient_id == "FKASSA"
    receipts = await fk.receipts(cert.id)
    assert len(receipts) == 1
    assert outcome.recipient_reference == receipts[0]["receipt_id"]
    [row] = await ledger(dispatch_settings, cert.id)
    assert row["state"] == "delivered"
    assert row["attempts"] == 1
    assert str(row["call_key"]) == receipts[0]["idempotency_key"]

    # A second request answers "already sent" (an outcome) without a call.
    second = await feed.request(cert.id, ref)
    outcomes = await feed.outcome_of(cert.id, count=2)
    assert [type(o) for o in outcomes] == [DispatchSucceeded, DispatchSucceeded]
    assert outcomes[1].idempotency_key == second
    assert outcomes[1].recipient_reference == receipts[0]["receipt_id"]
    assert len(await fk.receipts(cert.id)) == 1

    metrics = (await dispatch_app.get("/metrics")).text
    assert 'dispatch_outcomes_total{code="",outcome="dispatch.succeeded",recipient="FKASSA"}' in metrics
    assert (await dispatch_app.get("/readyz")).status_code == 200
    assert "/healthz" in (await dispatch_app.get("/openapi.json")).json()["paths"]


async def test_refusals_are_failed_outcomes_with_a_swedish_reason_and_no_call(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    people = iter(feed.persons)  # one citizen per case, so the withdrawal touches only its own
    revoked, ref1 = feed.certificate("LISJP", next(people))
    await feed.release(revoked, ref1)
    await feed.revoke(revoked, ref1)
    employer, ref2 = feed.certificate("AG7804", next(people))
    await feed.release(employer, ref2)
    test_person = feed.test_persons[0] if feed.test_persons else feed.persons[0]
    test_cert, ref3 = feed.certificate("LISJP", test_person)
    await feed.release(test_cert, ref3, test_patient=True)
    withdrawn, ref4 = feed.certificate("LISJP", next(people))
    await feed.release(withdrawn, ref4)
    await feed.withdraw(ref4)
    unknown, ref5 = feed.certificate("LISJP", next(people))  # never released
    inactive, ref6 = feed.certificate("LISJP", next(people))
    await feed.release(inactive, ref6)
    others, _ = feed.certificate("LISJP", next(people))
    await feed.release(others, ref1)  # released for citizen 1: citizen 6 may not send it

    pool = await create_pool(dispatch_settings.database_url, dispatch_settings.db_schema, application="t")
    try:
        await repo.save_recipient(
            pool,
            Recipient("INSURER_X", "Försäkringsbolaget X", False, frozenset({"LISJP"}), "x", "memory", False, 4),
        )
    finally:
        await pool.close()

    cases = [
        (revoked.id, ref1, "FKASSA", "REVOKED", "makulerats"),
        (employer.id, ref2, "FKASSA", "TYPE_NOT_ACCEPTED", "Försäkringskassan tar inte emot intyg av typen"),
        (test_cert.id, ref3, "FKASSA", "TEST_PATIENT", "testpatient"),
        (withdrawn.id, ref4, "FKASSA", "NO_CONSENT", "samtycke"),
        (unknown.id, ref5, "FKASSA", "UNKNOWN_CERTIFICATE", "finns inte"),
        (inactive.id, ref6, "NO_SUCH_RECIPIENT", "RECIPIENT_INACTIVE", "NO_SUCH_RECIPIENT"),
        (inactive.id, ref6, "INSURER_X", "RECIPIENT_INACTIVE", "Försäkringsbolaget X"),
        (others.id, ref6, "FKASSA", "UNKNOWN_CERTIFICATE", "finns inte"),
    ]
    keys = [await feed.request(cid, ref, recipient) for cid, ref, recipient, _, _ in cases]

    async def all_answered() -> list[DispatchFailed | DispatchSucceeded]:
        outcomes = [o for o in await feed.outcomes() if o.idempotency_key in keys]
        return outcomes if len(outcomes) == len(cases) else []

    outcomes = {o.idempotency_key: o for o in await eventually(all_answered, what="every refusal")}
    for key, (cid, ref, recipient, code, text) in zip(keys, cases, strict=True):
        outcome = outcomes[key]
        assert isinstance(outcome, DispatchFailed), (code, outcome)
        assert (outcome.certificate_id, outcome.citizen_ref, outcome.recipient_id) == (cid, ref, recipient)
        assert outcome.reason_code == code
        assert text in outcome.reason
        assert await fk.receipts(cid) == []
    # Requests and revocations/withdrawals travel on different topics: a request applied before its revocation is
    # queued, then failed at its claim without a call. Any such row ended failed with the refusal's code.
    for row in await ledger(dispatch_settings):
        assert row["state"] == "failed"
        assert row["failure_code"] in ("REVOKED", "NO_CONSENT")


async def test_a_revocation_is_forwarded_to_the_recipient_that_got_the_certificate(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await feed.request(cert.id, ref)
    await feed.outcome_of(cert.id)
    await fk.faults(down_until="2999-01-01T00:00:00Z")  # the revocation waits out a short outage
    await feed.revoke(cert, ref)
    await eventually(
        lambda: _row_attempted(dispatch_settings, cert.id, "revoke"), timeout=30, what="a failed revocation attempt"
    )
    await fk.faults()
    revocation = await eventually(lambda: fk.revocation_of(cert.id), timeout=30, what="the revocation at FK")
    rows = {r["kind"]: r for r in await ledger(dispatch_settings, cert.id)}
    assert str(revocation["idempotency_key"]) == str(rows["revoke"]["call_key"])
    await eventually(lambda: _state_is(dispatch_settings, cert.id, "revoke", "delivered"), what="revoke delivered")
    # The copy is gone; the ledger keeps only audit fields.
    async with connect(dispatch_settings.database_url, dispatch_settings.db_schema) as conn:
        assert await conn.fetchval("SELECT document FROM certificates WHERE id = $1", cert.id) is None


async def _row_attempted(settings: DispatchSettings, certificate_id: str, kind: str) -> bool:
    return any(r["kind"] == kind and r["attempts"] >= 1 for r in await ledger(settings, certificate_id))


async def _state_is(settings: DispatchSettings, certificate_id: str, kind: str, state: str) -> bool:
    return any(r["kind"] == kind and r["state"] == state for r in await ledger(settings, certificate_id))


async def test_an_accepted_send_whose_answer_is_lost_is_reconciled_not_sent_again(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    await fk.faults(drop_response_rate=1.0)
    before = (await fk.stats())["faults_injected_by_kind"]["drop_response"]
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await feed.request(cert.id, ref)

    [outcome] = await feed.outcome_of(cert.id)
    assert isinstance(outcome, DispatchSucceeded)
    stats = await fk.stats()
    assert stats["faults_injected_by_kind"]["drop_response"] == before + 1  # exactly one POST was made
    [receipt] = await fk.receipts(cert.id)
    assert outcome.recipient_reference == receipt["receipt_id"]
    [row] = await ledger(dispatch_settings, cert.id)
    assert row["state"] == "delivered"
    assert row["attempts"] == 2  # the call, then the reconciliation that found it


async def test_replaying_the_request_topic_from_offset_zero_makes_no_new_call(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim
) -> None:
    certs = [feed.certificate("LISJP") for _ in range(5)]
    async with running(create_app(dispatch_settings)):
        for cert, ref in certs:
            await feed.release(cert, ref)
            await feed.request(cert.id, ref)
        for cert, _ in certs:
            await feed.outcome_of(cert.id)
    outcomes_before = len(await feed.outcomes())

    replaying = dispatch_settings.model_copy(update={"consumer_group": "dispatch-replay"})
    async with running(create_app(replaying)):
        await eventually(lambda: _replayed(replaying, 5), timeout=30, what="the replay to reach the end")
    for cert, _ in certs:
        assert len(await fk.receipts(cert.id)) == 1
    [row] = await ledger(dispatch_settings, certs[0][0].id)
    assert row["attempts"] == 1
    assert len(await feed.outcomes()) == outcomes_before


async def _replayed(settings: DispatchSettings, requests: int) -> bool:
    """The replaying group committed past every request."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.topic_prefix + "dispatch-replay")
        topic = settings.topic(PORTAL_DISPATCH_REQUESTS.name)
        committed: int = sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset >= 0)
        return committed == requests
    finally:
        await admin.close()


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_consumption_goes_on(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    await feed.raw(PORTAL_DISPATCH_REQUESTS.name, b"x", b'{"type": "dispatch.requested", "not": "valid"}')
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await feed.request(cert.id, ref)
    [outcome] = await feed.outcome_of(cert.id)
    assert isinstance(outcome, DispatchSucceeded)
    dlq = await eventually(
        lambda: read_topic(
            dispatch_settings.kafka_bootstrap_servers, dispatch_settings.topic(PORTAL_DISPATCH_REQUESTS.name) + ".dlq"
        ),
        what="the dead letter",
    )
    assert len(dlq) == 1
    assert dict(dlq[0].headers)["dlq.consumer"] == b"dispatch"


async def test_a_recipient_added_to_the_registry_is_served_by_its_adapter_kind(
    dispatch_app: httpx.AsyncClient, feed: Feed, dispatch_settings: DispatchSettings
) -> None:
    endpoint = f"memory://{dispatch_settings.db_schema}"
    pool = await create_pool(dispatch_settings.database_url, dispatch_settings.db_schema, application="t")
    try:
        await repo.save_recipient(
            pool,
            Recipient("INSURER_Y", "Försäkringsbolaget Y", True, frozenset({"LISJP"}), endpoint, "memory", False, 2),
        )
    finally:
        await pool.close()
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await eventually(lambda: _has_worker(dispatch_app, "INSURER_Y"), timeout=10, what="the registry refresh")
    await feed.request(cert.id, ref, "INSURER_Y")
    [outcome] = await feed.outcome_of(cert.id)
    assert isinstance(outcome, DispatchSucceeded)
    assert outcome.recipient_id == "INSURER_Y"
    assert MEMORY_RECIPIENTS[endpoint].deliveries(cert.id) == 1


async def _has_worker(client: httpx.AsyncClient, recipient: str) -> bool:
    checks = (await client.get("/readyz")).json()["checks"]
    circuits: dict[str, str] = checks["recipients"]["circuits"]
    return recipient in circuits


async def test_two_replicas_claim_rows_without_sending_any_twice(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim
) -> None:
    await fk.faults(latency_ms=20, error_rate=0.1, seed=4)
    n = 150
    certs = [feed.certificate("LISJP") for _ in range(n)]
    first, second = create_app(dispatch_settings), create_app(dispatch_settings)
    async with (
        running(first),
        running(second),
    ):
        claimers = {app_state(first, DispatchService).sender.claimer, app_state(second, DispatchService).sender.claimer}
        assert len(claimers) == 2
        for cert, ref in certs:
            await feed.release(cert, ref)
        for cert, ref in certs:
            await feed.request(cert.id, ref)

        async def all_delivered() -> bool:
            rows = await ledger(dispatch_settings)
            return len(rows) == n and all(r["state"] == "delivered" for r in rows)

        await eventually(all_delivered, timeout=120, interval=0.5, what="every send delivered")

        async def every_outcome() -> list[DispatchSucceeded | DispatchFailed]:
            outcomes = await feed.outcomes()
            return outcomes if len({o.certificate_id for o in outcomes}) >= n else []

        outcomes = await eventually(every_outcome, timeout=60, interval=0.5, what="every outcome published")
    received = await fk.received_counts()
    assert [received[cert.id] for cert, _ in certs] == [1] * n
    assert all(isinstance(o, DispatchSucceeded) for o in outcomes)
    assert sorted(o.certificate_id for o in outcomes) == sorted(cert.id for cert, _ in certs)


async def test_a_certificate_revoked_while_its_send_is_under_way_gets_the_revocation_after_it(
    dispatch_app: httpx.AsyncClient, feed: Feed, fk: FkSim, dispatch_settings: DispatchSettings
) -> None:
    await fk.faults(latency_ms=1500)  # FK stores at once, answers after 1.5 s
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await feed.request(cert.id, ref)
    await eventually(lambda: fk.receipts(cert.id), what="FK to store it")
    await feed.revoke(cert, ref)
    [outcome] = await feed.outcome_of(cert.id)
    assert isinstance(outcome, DispatchSucceeded)  # it did arrive
    revocation = await eventually(lambda: fk.revocation_of(cert.id), what="the revocation forwarded after it")
    rows = {r["kind"]: r for r in await ledger(dispatch_settings, cert.id)}
    assert str(revocation["idempotency_key"]) == str(rows["revoke"]["call_key"])
    assert rows["send"]["state"] == "delivered"
