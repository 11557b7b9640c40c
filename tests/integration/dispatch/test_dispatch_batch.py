"""The batch paths have the effects of the one-by-one paths: a batch of send requests (`handlers.on_batch` against
`handlers.on_event`, in two schemas: the same ledger, outcomes and waits), and a group of outcomes
(`repo.finish_many`, as `repo.finish` would write each)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, decode, new_envelope
from schemas.events import CertificateReleased, DispatchFailed, DispatchRequested, DispatchSucceeded, EventData
from services.dispatch import repo
from services.dispatch.app import prepare
from services.dispatch.domain import SendKind, SendState
from services.dispatch.handlers import Dispatch, on_batch, on_event
from services.dispatch.settings import DispatchSettings
from services.kit.citizen import citizen_ref
from services.kit.db import create_pool
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from tests.harness import connect, drop_schema
from tests.integration.dispatch.conftest import ledger, make_settings

pytestmark = pytest.mark.integration

REF = "ab" * 32  # a citizen ref


def _envelope(data: EventData, subject: str) -> Envelope:
    return new_envelope(data, source="test", time=datetime.now(UTC), correlation_id="t", subject=subject)


def scenario(factory: CertificateFactory, key: str) -> tuple[list[Envelope], list[Envelope]]:
    """Releases, then one batch of requests with every kind of decision in it."""
    persons = [p for p in factory.persons if not p.test_patient]
    owner, other = persons[0], persons[1]
    now = datetime.now(UTC)

    def released(cert_type: str, person: Any, test_patient: bool = False) -> tuple[str, Envelope]:
        cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate(cert_type, person=person))
        data = CertificateReleased(
            citizen_ref=citizen_ref(person.personnummer, key), certificate=cert, test_patient=test_patient,
            released_at=now,
        )  # fmt: skip
        return cert.id, _envelope(data, cert.id)

    ok, ok_release = released("LISJP", owner)
    test_patient, test_release = released("LISJP", owner, test_patient=True)
    others, others_release = released("LISJP", other)
    wrong_type, wrong_type_release = released("AG7804", owner)
    ref = citizen_ref(owner.personnummer, key)

    def request(certificate_id: str, recipient: str = "FKASSA") -> Envelope:
        data = DispatchRequested(
            idempotency_key=uuid.uuid4(), certificate_id=certificate_id, recipient_id=recipient,
            citizen_ref=ref, requested_at=now,
        )  # fmt: skip
        return _envelope(data, certificate_id)

    requests = [
        request(ok),  # queued
        request(ok),  # already queued: no second row, no outcome
        request(test_patient),  # refused: a test patient
        request(others),  # refused: another citizen's certificate is unknown to this one (no wait)
        request(wrong_type),  # refused: FK does not take AG7804
        request("not-released-yet"),  # waits for its release
        request(ok, "NO_SUCH_RECIPIENT"),  # refused: recipient unknown
    ]
    return [ok_release, test_release, others_release, wrong_type_release], requests


async def effects(settings: DispatchSettings) -> dict[str, Any]:
    async with connect(settings.database_url, settings.db_schema) as conn:
        sends = await conn.fetch("SELECT kind, certificate_id, recipient_id, state, attempts FROM sends ORDER BY id")
        outbox = await conn.fetch("SELECT value FROM outbox ORDER BY id")
        waiting = await conn.fetch("SELECT certificate_id, recipient_id FROM waiting_requests")
    outcomes: Counter[tuple[str, str, str]] = Counter()
    for row in outbox:
        data = decode(row["value"]).data
        assert isinstance(data, DispatchSucceeded | DispatchFailed)
        code = data.reason_code if isinstance(data, DispatchFailed) else "sent"
        outcomes[(data.certificate_id, data.recipient_id, code)] += 1
    return {"sends": [tuple(r) for r in sends], "outcomes": outcomes, "waiting": sorted(tuple(r) for r in waiting)}


async def apply(settings: DispatchSettings, releases: list[Envelope], requests: list[Envelope], batch: bool) -> None:
    await prepare(settings)
    pool = await create_pool(settings.database_url, settings.db_schema, application="t")
    dispatch = Dispatch(settings=settings, pool=pool, clock=lambda: datetime.now(UTC))
    try:
        async with pool.acquire() as conn, conn.transaction():
            for envelope in releases:
                await on_event(dispatch, conn, envelope)
        async with pool.acquire() as conn, conn.transaction():
            if batch:
                await on_batch(dispatch, conn, requests)
            else:
                for envelope in requests:
                    await on_event(dispatch, conn, envelope)
    finally:
        await pool.close()


async def test_a_batch_of_requests_has_the_effects_of_one_request_at_a_time(
    base_settings: ServiceSettings, schema: str, unique: str, factory: CertificateFactory
) -> None:
    by_batch = make_settings(schema, unique, "http://127.0.0.1:9")
    one_by_one = make_settings(f"{schema}_one", unique, "http://127.0.0.1:9")
    releases, requests = scenario(factory, CitizenRefKeySettings().citizen_ref_key.get_secret_value())
    try:
        await apply(by_batch, releases, requests, batch=True)
        await apply(one_by_one, releases, requests, batch=False)
        batched, single = await effects(by_batch), await effects(one_by_one)
    finally:
        await drop_schema(base_settings.database_url, one_by_one.db_schema)
    assert batched == single
    ok = requests[0].subject
    assert batched["sends"] == [("send", ok, "FKASSA", "pending", 0)]
    assert sorted(code for _, _, code in batched["outcomes"]) == [
        "RECIPIENT_INACTIVE", "TEST_PATIENT", "TYPE_NOT_ACCEPTED", "UNKNOWN_CERTIFICATE",
    ]  # fmt: skip
    assert batched["waiting"] == [("not-released-yet", "FKASSA")]


async def test_outcomes_of_many_rows_are_written_in_one_statement_like_one_at_a_time(
    base_settings: ServiceSettings, schema: str, unique: str
) -> None:
    settings = make_settings(schema, unique, "http://127.0.0.1:9")
    await prepare(settings)
    pool = await create_pool(settings.database_url, settings.db_schema, application="t")
    now = datetime.now(UTC)
    later = now + timedelta(hours=24)
    try:
        async with pool.acquire() as conn:
            for cert in ("c-ok", "c-fail", "c-lost", "c-revoked"):
                await repo.store_released(
                    conn, certificate_id=cert, citizen_ref=REF, certificate_type="LISJP", test_patient=False,
                    document="{}", at=now,
                )  # fmt: skip
                await repo.queue_send(
                    conn, kind=SendKind.SEND, certificate_id=cert, recipient_id="FKASSA", citizen_ref=REF,
                    certificate_type="LISJP", request_key=uuid.uuid4(), now=now, deadline_at=later,
                )  # fmt: skip
            # Revoked while its send was under way: delivered anyway, so the revocation is forwarded after it.
            await repo.mark_revoked(conn, certificate_id="c-revoked", citizen_ref=REF, certificate_type="LISJP", at=now)
        claimed = {
            c.row.certificate_id: c.row
            for c in await repo.claim_due(pool, "FKASSA", 10, now=now, lease_until=later, claimer=1)
        }
        dispatch = Dispatch(settings=settings, pool=pool, clock=lambda: now)

        def outcome(cert: str) -> tuple[object, ...]:
            data = DispatchSucceeded(
                idempotency_key=claimed[cert].request_key, certificate_id=cert, recipient_id="FKASSA",
                citizen_ref=REF, delivered_at=now, recipient_reference="r",
            )  # fmt: skip
            return dispatch.outcome_row(data, correlation_id="t")

        lost = replace(claimed["c-lost"], attempts=claimed["c-lost"].attempts + 1)  # another claim since
        finishes = [
            repo.Finish(claimed["c-ok"], SendState.DELIVERED, now, later, reference="r", outcome=outcome("c-ok")),
            repo.Finish(claimed["c-fail"], SendState.FAILED, now, later, failure_code="REJECTED_BY_RECIPIENT",
                        error="HTTP 422"),
            repo.Finish(lost, SendState.DELIVERED, now, later, reference="r", outcome=outcome("c-lost")),
            repo.Finish(claimed["c-revoked"], SendState.DELIVERED, now, later, reference="r",
                        outcome=outcome("c-revoked")),
        ]  # fmt: skip
        held = await repo.finish_many(pool, finishes)
        assert held == {claimed[c].id for c in ("c-ok", "c-fail", "c-revoked")}
        rows = {(r["certificate_id"], r["kind"]): r for r in await ledger(settings)}
        assert rows[("c-ok", "send")]["state"] == "delivered"
        assert rows[("c-ok", "send")]["recipient_reference"] == "r"
        assert rows[("c-fail", "send")]["state"] == "failed"
        assert rows[("c-fail", "send")]["failure_code"] == "REJECTED_BY_RECIPIENT"
        assert rows[("c-lost", "send")]["state"] == "in_flight"  # the claim was lost: left to its holder
        assert rows[("c-revoked", "revoke")]["state"] == "pending"
        outbox = [decode(r["value"]).data for r in await pool.fetch("SELECT value FROM outbox ORDER BY id")]
        assert sorted(o.certificate_id for o in outbox if isinstance(o, DispatchSucceeded)) == ["c-ok", "c-revoked"]
        assert await repo.finish_many(pool, finishes) == set()  # a second write of the same outcomes holds nothing
    finally:
        await pool.close()
