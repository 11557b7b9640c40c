"""The recipient adapter contract, run against the in-memory test double (the same cases run against the
Försäkringskassan adapter and simulator in tests/integration/dispatch/test_dispatch_adapter_contract.py)."""

from __future__ import annotations

import uuid

from services.dispatch.adapters import (
    Delivered,
    Failed,
    InMemoryRecipient,
    NotReceived,
    Parcel,
    RecipientAdapter,
    Rejected,
)

LISJP_DOC = "{}"


async def check_contract(adapter: RecipientAdapter, parcel: Parcel, other_type: Parcel) -> None:
    """What dispatch relies on, whatever the recipient: reused by the integration test against FK."""
    key = parcel.call_key
    assert await adapter.was_received(parcel.certificate_id, key) == NotReceived()
    first = await adapter.send(parcel)
    assert isinstance(first, Delivered)
    assert first.reference
    # The same key again: the same delivery, not a second one.
    assert await adapter.send(parcel) == first
    assert await adapter.was_received(parcel.certificate_id, key) == first
    # Another key has not been received.
    assert await adapter.was_received(parcel.certificate_id, uuid.uuid4()) == NotReceived()
    # A type the recipient does not take is rejected for good.
    assert isinstance(await adapter.send(other_type), Rejected)
    # Revocation: idempotent; of a certificate never received: rejected.
    revoke_key = uuid.uuid4()
    revoked = await adapter.revoke(parcel.certificate_id, revoke_key)
    assert isinstance(revoked, Delivered)
    assert isinstance(await adapter.revoke(parcel.certificate_id, revoke_key), Delivered)
    assert isinstance(await adapter.revoke(str(uuid.uuid4()), uuid.uuid4()), Rejected)


async def test_the_in_memory_double_keeps_the_contract() -> None:
    recipient = InMemoryRecipient(accepted_types=frozenset({"LISJP"}))
    parcel = Parcel("c-1", "LISJP", LISJP_DOC, uuid.uuid4())
    await check_contract(recipient, parcel, Parcel("c-2", "AG7804", LISJP_DOC, uuid.uuid4()))
    assert recipient.deliveries("c-1") == 1


async def test_the_double_scripts_a_lost_answer_and_an_outage() -> None:
    recipient = InMemoryRecipient(drop_next=1)
    parcel = Parcel("c-1", "LISJP", LISJP_DOC, uuid.uuid4())
    lost = await recipient.send(parcel)
    assert lost == Failed("answer lost", maybe_delivered=True)
    assert isinstance(await recipient.was_received("c-1", parcel.call_key), Delivered)
    recipient.down = True
    assert await recipient.send(parcel) == Failed("down", maybe_delivered=False)
    assert isinstance(await recipient.was_received("c-1", parcel.call_key), Failed)
    recipient.down = False
    assert isinstance(await recipient.send(parcel), Delivered)
    assert recipient.deliveries("c-1") == 1
