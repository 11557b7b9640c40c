"""The portal's read model against the real broker and database: releases, revocations (also before the
certificate), withdrawal, dispatch outcomes, replacement, and a replay from offset 0 that changes nothing."""

from __future__ import annotations

import uuid

import pytest

from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES
from services.kit.consumer import IdempotentConsumer
from services.portal.consumers import on_event
from tests.harness import eventually
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration


async def test_released_revoked_withdrawn_and_outcomes(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(0))
    bo = await portal.login(portal.citizen(1))
    first = await portal.release(anna)
    second = await portal.release(anna, "AG7804")
    kept = await portal.release(bo)

    async def anna_has_two() -> bool:
        return sorted(await portal.listed(anna)) == sorted([first["id"], second["id"]])

    await eventually(anna_has_two, what="released certificates listed")
    assert await portal.listed(bo) == [kept["id"]]

    # Revoked: gone; revoked before it arrives: never shown.
    await portal.revoke(anna, first["id"])
    early_id = str(uuid.uuid4())
    await portal.revoke(anna, early_id)
    await portal.release(anna, id=early_id)
    marker = await portal.release(anna)

    async def revoked_gone() -> bool:
        ids = await portal.listed(anna)
        return marker["id"] in ids and first["id"] not in ids

    await eventually(revoked_gone, what="revoked certificate gone")
    assert early_id not in await portal.listed(anna)

    # A send request, then the outcome from dispatch: "Skickat" with history "Skickat till Försäkringskassan".
    preview = (await portal.client.get(f"/api/v1/certificates/{marker['id']}/dispatch-preview",
                                       headers=anna.cookie)).json()  # fmt: skip
    key = uuid.UUID(preview["idempotency_key"])
    sent = await portal.client.post(f"/api/v1/certificates/{marker['id']}/dispatches", headers=anna.posting(),
                                    json={"recipient_id": "FKASSA", "idempotency_key": str(key)})  # fmt: skip
    assert sent.json() == {"outcome": "requested"}
    await portal.outcome(anna, marker["id"], key)

    async def sent_state() -> bool:
        detail = (await portal.client.get(f"/api/v1/certificates/{marker['id']}", headers=anna.cookie)).json()
        return "Skickat" in detail["badges"] and any(h["label"] == "Skickat till Försäkringskassan"
                                                     for h in detail["history"])  # fmt: skip

    await eventually(sent_state, what="Skickat after the outcome")

    # Replay both topics from offset 0 with a new group: nothing changes.
    before = await snapshot(portal)
    replay = IdempotentConsumer(portal.settings, portal.pool, name="portal-read-model",
                                topics=[CONSENT_RELEASED, DISPATCH_OUTCOMES], handler=on_event,
                                group_id=f"replay-{uuid.uuid4().hex[:6]}")  # fmt: skip
    import asyncio

    task = asyncio.create_task(replay.run())
    try:
        await eventually(lambda: _assigned(replay), what="replay consumer assigned")
        await eventually(lambda: _caught_up(portal), timeout=20, what="replay done")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await snapshot(portal) == before

    # Withdrawn: all of Anna's certificates, history and sends gone; Bo untouched; the access log stays.
    await portal.withdrawn(anna)

    async def anna_gone() -> bool:
        return await portal.count("certificates", anna) == 0 and await portal.count("dispatches", anna) == 0

    await eventually(anna_gone, what="withdrawn citizen's data deleted")
    assert await portal.count("certificates", bo) == 1
    assert await portal.count("access_log", anna) > 0
    orphans = await portal.pool.fetchval(
        "SELECT count(*) FROM status_history h LEFT JOIN certificates c ON c.id = h.certificate_id WHERE c.id IS NULL"
    )
    assert orphans == 0


async def _assigned(consumer: IdempotentConsumer) -> bool:
    return consumer.assigned


async def _caught_up(portal: PortalHarness) -> bool:
    from tests.harness import read_topic

    total = 0
    for topic in (CONSENT_RELEASED.name, DISPATCH_OUTCOMES.name):
        total += len(await read_topic(portal.settings.kafka_bootstrap_servers, portal.settings.topic(topic)))
    processed: int = await portal.pool.fetchval("SELECT count(*) FROM processed_events")
    return processed >= total


async def snapshot(portal: PortalHarness) -> tuple[object, ...]:
    certs = await portal.pool.fetch("SELECT id, archived, replaced_by FROM certificates ORDER BY id")
    history = await portal.pool.fetch("SELECT certificate_id, state, at FROM status_history ORDER BY id")
    sends = await portal.pool.fetch("SELECT idempotency_key, state FROM dispatches ORDER BY idempotency_key")
    return [tuple(r) for r in certs], [tuple(r) for r in history], [tuple(r) for r in sends]


async def test_replacement_in_either_order(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(2))
    old = await portal.release(anna)
    newer = await portal.release(anna, relation={"kind": "REPLACES", "certificate_id": old["id"]})
    # The replacement of a certificate that arrives later.
    late_id = str(uuid.uuid4())
    replacement = await portal.release(anna, relation={"kind": "REPLACES", "certificate_id": late_id})
    await portal.release(anna, id=late_id)

    async def replaced() -> bool:
        items = {c["id"]: c for c in (await portal.client.get("/api/v1/certificates", headers=anna.cookie)).json()}
        return len(items) == 4 and items[old["id"]]["replaced"] and items[late_id]["replaced"]

    await eventually(replaced, what="both replaced")
    detail = (await portal.client.get(f"/api/v1/certificates/{old['id']}", headers=anna.cookie)).json()
    assert "Ersatt" in detail["badges"]
    assert detail["may_send_to"] == []
    assert any(h["state"] == "REPLACED" for h in detail["history"])
    assert not (await portal.client.get(f"/api/v1/certificates/{newer['id']}", headers=anna.cookie)).json()["replaced"]
    assert replacement["id"] != late_id


async def test_test_patients_certificates_are_shown_but_never_offered_for_sending(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(13))
    cert = await portal.release(anna, test_patient=True)

    async def listed() -> bool:
        return cert["id"] in await portal.listed(anna)

    await eventually(listed, what="test patient's certificate listed")
    detail = (await portal.client.get(f"/api/v1/certificates/{cert['id']}", headers=anna.cookie)).json()
    assert detail["may_send_to"] == []
    sent = await portal.client.post(f"/api/v1/certificates/{cert['id']}/dispatches", headers=anna.posting(),
                                    json={"recipient_id": "FKASSA", "idempotency_key": str(uuid.uuid4())})  # fmt: skip
    assert sent.status_code == 409
    assert await portal.count("dispatches", anna) == 0
