"""The recipient adapter contract (tests/unit/test_dispatch_adapter_contract.py) against the Försäkringskassan
adapter and the simulator over HTTP, plus how the adapter classifies the simulator's faults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.adapters import Delivered, Failed, FkAdapter, NotReceived, Parcel
from services.dispatch.domain import Recipient
from tests.integration.dispatch.conftest import FkSim
from tests.unit.dispatch.test_dispatch_adapter_contract import check_contract

pytestmark = pytest.mark.integration


def adapter(fk: FkSim, timeout: float = 5) -> FkAdapter:
    recipient = Recipient("FKASSA", "Försäkringskassan", True, frozenset({"LISJP"}), fk.url, "fk-http", True, 4)
    return FkAdapter(recipient, token="dev-minaintyg-to-fk", sender="minaintyg", timeout=timeout, max_connections=4)


async def test_the_fk_adapter_keeps_the_contract(fk: FkSim, factory) -> None:  # type: ignore[no-untyped-def]
    lisjp = factory.certificate("LISJP")
    ag = factory.certificate("AG7804")
    fk_adapter = adapter(fk)
    try:
        parcel = Parcel(lisjp["id"], "LISJP", _json(lisjp), uuid.uuid4())
        await check_contract(fk_adapter, parcel, Parcel(ag["id"], "AG7804", _json(ag), uuid.uuid4()))
    finally:
        await fk_adapter.close()
    assert len(await fk.receipts(lisjp["id"])) == 1


async def test_the_fk_adapter_classifies_faults(fk: FkSim, factory) -> None:  # type: ignore[no-untyped-def]
    cert = factory.certificate("LISJP")
    parcel = Parcel(cert["id"], "LISJP", _json(cert), uuid.uuid4())
    fk_adapter = adapter(fk, timeout=0.5)
    try:
        await fk.faults(error_rate=1.0)
        assert await fk_adapter.send(parcel) == Failed("HTTP 503 simulated error: Försäkringskassan could not take "
                                                       "the request", maybe_delivered=False)  # fmt: skip
        await fk.faults(timeout_rate=1.0, timeout_hold_s=5)
        timed_out = await fk_adapter.send(parcel)
        assert isinstance(timed_out, Failed)
        assert timed_out.maybe_delivered
        await fk.faults(down_until=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
        down = await fk_adapter.send(parcel)
        assert isinstance(down, Failed)
        assert not down.maybe_delivered
        assert isinstance(await fk_adapter.was_received(cert["id"], parcel.call_key), Failed)
        await fk.faults(drop_response_rate=1.0)
        dropped = await fk_adapter.send(parcel)
        assert isinstance(dropped, Failed)
        assert dropped.maybe_delivered
        await fk.faults()
        assert isinstance(await fk_adapter.was_received(cert["id"], parcel.call_key), Delivered)
        assert await fk_adapter.was_received(cert["id"], uuid.uuid4()) == NotReceived()
    finally:
        await fk_adapter.close()


def _json(cert: dict) -> str:  # type: ignore[type-arg]
    import orjson

    return orjson.dumps(cert).decode()
