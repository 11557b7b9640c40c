"""Recipients behind one small interface, one adapter per kind of recipient.

The dispatch logic only sees `RecipientAdapter`; which adapter serves a recipient is the registry's
`adapter_kind`. A new kind of recipient (an insurer, an employer gateway) is a new adapter registered in
`ADAPTER_KINDS` and a row in the registry, never a change of the dispatch logic.

Answers are classified for the ledger: `Delivered` (the recipient has it), `Rejected` (it never will: no retry),
`Failed` (try again later; `maybe_delivered` when the call may have arrived, e.g. a lost answer), and for the
question "did you receive it?" also `NotReceived`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import orjson

from services.dispatch.domain import Recipient
from services.dispatch.settings import DispatchSettings


@dataclass(frozen=True)
class Delivered:
    reference: str | None = None


@dataclass(frozen=True)
class Rejected:
    detail: str


@dataclass(frozen=True)
class Failed:
    detail: str
    maybe_delivered: bool


@dataclass(frozen=True)
class NotReceived:
    pass


SendAnswer = Delivered | Rejected | Failed
ReceivedAnswer = Delivered | NotReceived | Failed


@dataclass(frozen=True)
class Parcel:
    """What is sent: one certificate (its JSON as stored), under the ledger row's idempotency key."""

    certificate_id: str
    certificate_type: str
    document: str
    call_key: uuid.UUID


class RecipientAdapter(Protocol):
    """What dispatch needs of a recipient."""

    async def send(self, parcel: Parcel) -> SendAnswer:
        """Deliver a certificate; the same key again must not deliver it twice."""
        ...

    async def was_received(self, certificate_id: str, call_key: uuid.UUID) -> ReceivedAnswer:
        """Reconciliation: did the recipient get the send made with this key?"""
        ...

    async def revoke(self, certificate_id: str, call_key: uuid.UUID) -> SendAnswer:
        """Tell the recipient the certificate was revoked; idempotent by key."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# --- Försäkringskassan over HTTP ---------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        text = body.get("detail", "") if isinstance(body, dict) else ""
    except ValueError:
        text = ""
    return f"HTTP {response.status_code} {str(text)[:200]}".strip()


def _transient(status: int) -> bool:
    # 401/403: our credential is wrong or expired, which an operator fixes; 408/429 and 5xx pass by themselves.
    return status in (401, 403, 408, 429) or status >= 500


class FkAdapter:
    """Försäkringskassan's API (deploy/simulators/fk speaks it): POST /v1/intyg with an Idempotency-Key,
    GET /v1/intyg/{id}/receipts?idempotency_key=…, POST /v1/intyg/{id}/revocation."""

    def __init__(self, recipient: Recipient, *, token: str, sender: str, timeout: float, max_connections: int) -> None:
        self._sender_json = orjson.dumps(sender).decode()
        self._client = httpx.AsyncClient(
            base_url=recipient.endpoint.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def send(self, parcel: Parcel) -> SendAnswer:
        # The stored certificate JSON is spliced in as it is: it was validated when released.
        body = f'{{"certificate":{parcel.document},"sender":{self._sender_json}}}'.encode()
        try:
            response = await self._client.post(
                "/v1/intyg", content=body, headers={"Idempotency-Key": str(parcel.call_key)}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return Failed(f"{type(exc).__name__}", maybe_delivered=False)  # the request never left
        except httpx.HTTPError as exc:
            return Failed(f"{type(exc).__name__}", maybe_delivered=True)  # sent, answer lost
        if response.status_code in (200, 201):
            try:
                reference = str(response.json()["receipt_id"])
            except (ValueError, KeyError, TypeError):
                return Failed(f"HTTP {response.status_code} with an unreadable receipt", maybe_delivered=True)
            return Delivered(reference)
        if _transient(response.status_code):
            # A 503 (or a refused credential) comes before anything is stored; a 500 or 504 may come after.
            return Failed(_detail(response), maybe_delivered=response.status_code not in (401, 403, 429, 503))
        return Rejected(_detail(response))

    async def was_received(self, certificate_id: str, call_key: uuid.UUID) -> ReceivedAnswer:
        try:
            response = await self._client.get(
                f"/v1/intyg/{certificate_id}/receipts", params={"idempotency_key": str(call_key)}
            )
        except httpx.HTTPError as exc:
            return Failed(type(exc).__name__, maybe_delivered=True)
        if response.status_code != 200:
            return Failed(_detail(response), maybe_delivered=True)
        receipts = response.json()
        if isinstance(receipts, list) and receipts:
            return Delivered(str(receipts[0].get("receipt_id")))
        return NotReceived()

    async def revoke(self, certificate_id: str, call_key: uuid.UUID) -> SendAnswer:
        try:
            response = await self._client.post(
                f"/v1/intyg/{certificate_id}/revocation",
                content=f'{{"sender":{self._sender_json}}}'.encode(),
                headers={"Idempotency-Key": str(call_key)},
            )
        except httpx.HTTPError as exc:
            return Failed(type(exc).__name__, maybe_delivered=True)
        if response.status_code in (200, 201):
            return Delivered(str(response.json().get("revocation_id")))
        if response.status_code == 404:
            return Rejected("the recipient never received the certificate")
        if _transient(response.status_code):
            return Failed(_detail(response), maybe_delivered=True)
        return Rejected(_detail(response))

    async def close(self) -> None:
        await self._client.aclose()


# --- the test double ---------------------------------------------------------------------------------------


@dataclass
class InMemoryRecipient:
    """A recipient in memory with the contract's behaviour, and faults to script: the test double of
    `RecipientAdapter` (unit tests, and in-process tests of a recipient added through the registry)."""

    accepted_types: frozenset[str] = frozenset()
    received: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)  # key → (certificate id, reference)
    revoked: dict[str, uuid.UUID] = field(default_factory=dict)
    down: bool = False
    drop_next: int = 0  # accept, then lose the answer
    calls: int = 0

    async def send(self, parcel: Parcel) -> SendAnswer:
        self.calls += 1
        if self.down:
            return Failed("down", maybe_delivered=False)
        if self.accepted_types and parcel.certificate_type not in self.accepted_types:
            return Rejected(f"type {parcel.certificate_type} not taken")
        known = self.received.get(parcel.call_key)
        if known is not None and known[0] != parcel.certificate_id:
            return Rejected("idempotency key used for another certificate")
        if known is None:
            known = (parcel.certificate_id, str(uuid.uuid4()))
            self.received[parcel.call_key] = known
        if self.drop_next > 0:
            self.drop_next -= 1
            return Failed("answer lost", maybe_delivered=True)
        return Delivered(known[1])

    async def was_received(self, certificate_id: str, call_key: uuid.UUID) -> ReceivedAnswer:
        if self.down:
            return Failed("down", maybe_delivered=True)
        known = self.received.get(call_key)
        return Delivered(known[1]) if known is not None and known[0] == certificate_id else NotReceived()

    async def revoke(self, certificate_id: str, call_key: uuid.UUID) -> SendAnswer:
        self.calls += 1
        if self.down:
            return Failed("down", maybe_delivered=True)
        if not any(cid == certificate_id for cid, _ in self.received.values()):
            return Rejected("the recipient never received the certificate")
        self.revoked.setdefault(certificate_id, call_key)
        return Delivered(str(self.revoked[certificate_id]))

    def deliveries(self, certificate_id: str) -> int:
        return sum(1 for cid, _ in self.received.values() if cid == certificate_id)

    async def close(self) -> None:
        return None


AdapterFactory = Callable[[Recipient, DispatchSettings], RecipientAdapter]


def _fk(recipient: Recipient, settings: DispatchSettings) -> RecipientAdapter:
    token = settings.recipient_tokens.get(recipient.id)
    return FkAdapter(
        recipient,
        token=token.get_secret_value() if token else "",
        sender=settings.sender_name,
        timeout=settings.call_timeout_seconds,
        max_connections=recipient.max_concurrency,
    )


# Kind → how to build its adapter. In-memory recipients are registered per process (tests), see `register_memory`.
ADAPTER_KINDS: dict[str, AdapterFactory] = {"fk-http": _fk}
MEMORY_RECIPIENTS: dict[str, InMemoryRecipient] = {}


def _memory(recipient: Recipient, _settings: DispatchSettings) -> RecipientAdapter:
    return MEMORY_RECIPIENTS.setdefault(recipient.endpoint, InMemoryRecipient())


ADAPTER_KINDS["memory"] = _memory


class UnknownAdapterKind(LookupError):
    pass


def adapter_for(recipient: Recipient, settings: DispatchSettings) -> RecipientAdapter:
    """The adapter of a registry entry."""
    factory = ADAPTER_KINDS.get(recipient.adapter_kind)
    if factory is None:
        raise UnknownAdapterKind(f"recipient {recipient.id}: no adapter of kind {recipient.adapter_kind!r}")
    return factory(recipient, settings)
