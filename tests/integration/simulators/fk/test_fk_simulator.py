"""The Försäkringskassan simulator against real PostgreSQL: its API in-process, its faults over real HTTP.

The dropped response and the timeout are only meaningful over a socket, so those run the simulator as a process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.simulators.fk.app import create_app
from deploy.simulators.fk.settings import FksimSettings
from deploy.simulators.platform.generator import CertificateFactory
from services.kit.settings import ServiceSettings
from tests.harness import ServiceProcess, eventually, in_process

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-minaintyg-to-fk"}


@pytest.fixture
def fk_settings(base_settings: ServiceSettings, schema: str) -> FksimSettings:
    return FksimSettings(db_schema=schema, environment="test", log_json=False)


@pytest.fixture
async def fk(fk_settings: FksimSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator in-process, with an authenticated client."""
    async with in_process(create_app(fk_settings), "http://fk", headers=AUTH) as client:
        yield client


async def send(
    client: httpx.AsyncClient, cert: dict[str, Any], key: uuid.UUID | str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": str(key or uuid.uuid4())}
    return await client.post("/v1/intyg", json={"certificate": cert, "sender": "minaintyg"}, headers=headers, **kwargs)


async def receipts(client: httpx.AsyncClient, certificate_id: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/intyg/{certificate_id}/receipts", params=params)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/sim/stats")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_faults(client: httpx.AsyncClient, **faults: Any) -> None:
    response = await client.put("/sim/faults", json=faults)
    assert response.status_code == 200, response.text


# --- API behaviour (in-process) --------------------------------------------------------------------------


async def test_unknown_sender_is_refused_and_sim_needs_no_credential(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = await fk.post(
            "/v1/intyg",
            json={"certificate": cert, "sender": "x"},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 401
        assert response.json() == {"detail": "missing or invalid sender credential"}
    assert (await fk.get("/v1/received", headers={"Authorization": ""})).status_code == 401
    assert (await fk.get("/sim/stats", headers={"Authorization": ""})).status_code == 200
    assert (await stats(fk))["received"] == 0


async def test_idempotency_key_is_required_and_must_be_a_uuid(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    missing = await fk.post("/v1/intyg", json={"certificate": cert, "sender": "minaintyg"})
    assert missing.status_code == 400
    assert "Idempotency-Key" in missing.json()["detail"]
    assert (await send(fk, cert, key="not-a-uuid")).status_code == 400
    assert await receipts(fk, cert["id"]) == []


async def test_same_key_answers_the_first_receipt_and_stores_once(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    key = uuid.uuid4()
    first = await send(fk, cert, key)
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert set(receipt) == {"receipt_id", "certificate_id", "received_at"}
    assert receipt["certificate_id"] == cert["id"]

    again = await send(fk, cert, key)
    assert again.status_code == 200
    assert again.json() == receipt

    # The same certificate under a new key is a second delivery: FK stores it, and the sender can see it did.
    assert (await send(fk, cert)).status_code == 201
    both = await receipts(fk, cert["id"])
    assert both[0]["idempotency_key"] == str(key)
    assert len(both) == 2
    assert both[0]["receipt_id"] == receipt["receipt_id"]
    assert both[0]["certificate_type"] == "LISJP"
    assert both[0]["sender"] == "minaintyg"
    assert await receipts(fk, cert["id"], idempotency_key=str(key)) == both[:1]
    assert await receipts(fk, "never-sent") == []
    assert await stats(fk) == {
        "received": 2,
        "distinct_certificates": 1,
        "duplicates_by_key": 1,
        "revocations": 0,
        "faults_injected_by_kind": {"error": 0, "latency": 0, "timeout": 0, "downtime": 0, "drop_response": 0},
    }


async def test_same_key_for_another_certificate_is_a_conflict(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    first, other = factory.certificate("LISJP"), factory.certificate("LISJP")
    key = uuid.uuid4()
    assert (await send(fk, first, key)).status_code == 201
    conflict = await send(fk, other, key)
    assert conflict.status_code == 409
    assert first["id"] in conflict.json()["detail"]
    assert await receipts(fk, other["id"]) == []


async def test_types_fk_does_not_take_and_invalid_certificates_are_422(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    ag = factory.certificate("AG7804")
    refused = await send(fk, ag)
    assert refused.status_code == 422
    body = refused.json()
    assert "does not take certificates of type 'AG7804'" in body["detail"]
    taken = "Försäkringskassan takes FK7263, LISJP, LUAE_FS, LUAE_NA, LUSE"
    assert body["problems"] == [{"path": "certificate.type", "message": taken}]

    broken = factory.certificate("LISJP")
    del broken["patient"]
    invalid = await send(fk, broken)
    assert invalid.status_code == 422
    assert {"path": "certificate.patient", "message": "Field required"} in invalid.json()["problems"]
    pnr = ag["patient"]["personnummer"]
    assert pnr not in refused.text
    assert (await stats(fk))["received"] == 0


async def test_received_lists_everything_in_order_page_by_page(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    certs = [factory.certificate("LISJP") for _ in range(5)]
    for cert in certs:
        assert (await send(fk, cert)).status_code == 201
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await fk.get("/v1/received", params={"limit": 2, "after": after})).json()
        if not page["items"]:
            assert page["next_after"] == after
            break
        assert len(page["items"]) <= 2
        seen += page["items"]
        after = page["next_after"]
    assert [r["certificate_id"] for r in seen] == [c["id"] for c in certs]
    assert [r["seq"] for r in seen] == sorted(r["seq"] for r in seen)
    assert all(r["body"] is None for r in seen)
    full = (await fk.get("/v1/received", params={"limit": 1, "include_body": "true"})).json()
    assert full["items"][0]["body"] == {"certificate": certs[0], "sender": "minaintyg"}
    assert (await fk.get("/v1/received", params={"limit": 0})).status_code == 422


async def test_revocation_is_stored_once_and_only_for_received_certificates(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert, other = factory.certificate("LISJP"), factory.certificate("LISJP")
    url = f"/v1/intyg/{cert['id']}/revocation"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    unknown = await fk.post(url, headers=key)
    assert unknown.status_code == 404
    assert "never received" in unknown.json()["detail"]
    assert (await fk.post(url)).status_code == 400

    assert (await send(fk, cert)).status_code == 201
    assert (await send(fk, other)).status_code == 201
    revoked = await fk.post(url, json={"reason": "Fel patient"}, headers=key)
    assert revoked.status_code == 201, revoked.text
    revocation = revoked.json()
    assert revocation["status"] == "revoked"
    assert revocation["reason"] == "Fel patient"
    assert revocation["sender"] == "minaintyg"

    replay = await fk.post(url, headers=key)
    assert replay.status_code == 200
    assert replay.json() == {**revocation, "status": "already_revoked"}
    other_key = await fk.post(url, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert other_key.status_code == 200
    assert other_key.json()["revocation_id"] == revocation["revocation_id"]
    assert (await fk.post(f"/v1/intyg/{other['id']}/revocation", headers=key)).status_code == 409

    asked = await fk.get(url)
    assert asked.status_code == 200
    assert asked.json() == revocation
    assert (await fk.get(f"/v1/intyg/{other['id']}/revocation")).status_code == 404
    assert (await stats(fk))["revocations"] == 1


# --- Faults (in-process) -----------------------------------------------------------------------------------


async def test_error_rate_one_answers_503_stores_nothing_and_reads_keep_working(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    await set_faults(fk, error_rate=1)
    for _ in range(3):
        refused = await send(fk, cert)
        assert refused.status_code == 503
        assert "detail" in refused.json()
    assert await receipts(fk, cert["id"]) == []
    assert (await fk.get("/v1/received")).json()["items"] == []
    counted = await stats(fk)
    assert counted["received"] == 0
    assert counted["faults_injected_by_kind"]["error"] == 3

    await set_faults(fk)
    assert (await send(fk, cert)).status_code == 201


async def test_planned_downtime_refuses_everything_until_it_ends(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    until = datetime.now(UTC) + timedelta(seconds=1.5)
    await set_faults(fk, down_until=until.isoformat())
    assert (await fk.get("/sim/faults")).json()["down_until"] is not None

    down = await send(fk, cert)
    assert down.status_code == 503
    assert 1 <= int(down.headers["Retry-After"]) <= 2
    assert "planned maintenance" in down.json()["detail"]
    assert (await fk.get(f"/v1/intyg/{cert['id']}/receipts")).status_code == 503

    async def accepted() -> bool:
        return (await send(fk, cert)).status_code == 201

    await eventually(accepted, timeout=10, interval=0.2, what="the downtime to end")
    assert datetime.now(UTC) >= until
    assert len(await receipts(fk, cert["id"])) == 1
    assert (await stats(fk))["faults_injected_by_kind"]["downtime"] >= 2


async def test_latency_is_added_to_writes(fk: httpx.AsyncClient, factory: CertificateFactory) -> None:
    await set_faults(fk, latency_ms=300)
    started = time.perf_counter()
    response = await send(fk, factory.certificate("LISJP"))
    elapsed = time.perf_counter() - started
    assert response.status_code == 201
    assert elapsed >= 0.3
    assert (await stats(fk))["faults_injected_by_kind"]["latency"] == 1


async def test_fault_settings_are_validated_and_a_seed_repeats_the_same_faults(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    assert (await fk.put("/sim/faults", json={"error_rate": 1.5})).status_code == 422
    assert (await fk.put("/sim/faults", json={"down_until": "2030-01-01T00:00:00"})).status_code == 422

    async def statuses() -> list[int]:
        await set_faults(fk, error_rate=0.5, seed=42)
        return [(await send(fk, factory.certificate("LISJP"))).status_code for _ in range(12)]

    first = await statuses()
    assert set(first) == {201, 503}
    assert await statuses() == first
    assert (await fk.get("/sim/faults")).json()["seed"] == 42

    reset = await fk.delete("/sim/received")
    assert reset.status_code == 204
    assert (await stats(fk))["received"] == 0
    assert (await fk.get("/v1/received")).json()["items"] == []


# --- Over a real socket (subprocess) --------------------------------------------------------------------


@pytest.fixture
def fk_process(fk_settings: FksimSettings, tmp_path: Path) -> Iterator[ServiceProcess]:
    """`fk-sim` on a free port (the same one across a restart), logging to a file."""
    env = {"FKSIM_DB_SCHEMA": fk_settings.db_schema, "DATABASE_URL": fk_settings.database_url, "LOG_LEVEL": "INFO"}
    process = ServiceProcess("fk-sim", env, port_env="FKSIM_PORT", log=tmp_path / "fk-sim.log")
    try:
        yield process
    finally:
        process.stop()


async def test_over_http_a_dropped_response_is_stored_a_timeout_is_not_and_both_survive_a_restart(
    fk_process: ServiceProcess, factory: CertificateFactory
) -> None:
    await fk_process.start()
    cert = factory.certificate("LISJP")
    key = uuid.uuid4()
    async with httpx.AsyncClient(base_url=fk_process.url, headers=AUTH, timeout=10) as client:
        await set_faults(client, drop_response_rate=1)
        # The hardest case: FK stored and committed it, but the sender only sees a broken connection.
        with pytest.raises(httpx.TransportError):
            await send(client, cert, key)
        stored = await receipts(client, cert["id"])
        assert [r["idempotency_key"] for r in stored] == [str(key)]

        # Reconciliation: the sender asks, or retries with the same key and gets the same receipt, stored once.
        await set_faults(client)
        retried = await send(client, cert, key)
        assert retried.status_code == 200
        assert retried.json()["receipt_id"] == stored[0]["receipt_id"]

        timed_out = factory.certificate("LISJP")
        await set_faults(client, timeout_rate=1, timeout_hold_s=30)
        started = time.perf_counter()
        with pytest.raises(httpx.TimeoutException):
            await send(client, timed_out, timeout=0.5)
        assert time.perf_counter() - started < 5
        assert await receipts(client, timed_out["id"]) == []

        await set_faults(client)
        counted = await stats(client)
        assert counted["received"] == 1
        assert counted["duplicates_by_key"] == 1
        assert counted["faults_injected_by_kind"]["drop_response"] == 1
        assert counted["faults_injected_by_kind"]["timeout"] == 1

        # What FK received outlives the simulator: a restarted one still knows, and forgot its faults.
        fk_process.stop()
        await fk_process.start()
        assert await stats(client) == counted
        assert [r["receipt_id"] for r in await receipts(client, cert["id"])] == [stored[0]["receipt_id"]]
        assert (await client.get("/sim/faults")).json()["drop_response_rate"] == 0

    logged = fk_process.read_log()
    assert cert["id"] in logged
    assert cert["patient"]["personnummer"] not in logged
    assert cert["patient"]["family_name"] not in logged
    assert "Exception in ASGI application" not in logged  # the intended cut is not logged as a crash


async def test_concurrent_writes_are_stored_together_and_each_answered_as_if_alone(
    fk: httpx.AsyncClient, factory: CertificateFactory
) -> None:
    """Receipts of concurrent requests are committed in groups (store.ReceiptWriter): a repeated key in a group is
    still answered as a replay of the one stored, never stored twice."""
    certs = [factory.certificate("LISJP") for _ in range(19)]
    key = uuid.uuid4()
    responses = await asyncio.gather(
        *(send(fk, cert) for cert in certs[1:]), *(send(fk, certs[0], key) for _ in range(5))
    )
    distinct, repeated = responses[:18], responses[18:]
    assert [r.status_code for r in distinct] == [201] * 18
    assert len({r.json()["receipt_id"] for r in distinct}) == 18
    assert sorted(r.status_code for r in repeated) == [200, 200, 200, 200, 201]
    assert len({r.json()["receipt_id"] for r in repeated}) == 1
    assert len(await receipts(fk, certs[0]["id"])) == 1
    counted = await stats(fk)
    assert counted["received"] == 19
    assert counted["duplicates_by_key"] == 4
