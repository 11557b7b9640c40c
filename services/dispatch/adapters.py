"""Recipients behind one small interface, one adapter per kind of recipient.

The dispatch logic only sees `RecipientAdapter`; which adapter serves a recipient is the registry's
`adapter_kind`. A new kind of recipient (an insurer, an employer gateway) is a new adapter registered in
`ADAPTER_KINDS` and a row in the registry, never a change of the dispatch logic.

Answers are classified for the ledger: `Delivered` (the recipient has it), `Rejected` (it never will: no retry),
`Failed` (try again later; `maybe_delivered` when the call may have arrived, e.g. a lost answer), and for the
question "did you receive it?" also `NotReceived`.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import orjson

from services.dispatch.domain import Recipient
from services.dispatch.settings import DispatchSettings
from services.kit.tls import client_context


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


def _detail(status: int, body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
        text = parsed.get("detail", "") if isinstance(parsed, dict) else ""
    except orjson.JSONDecodeError:
        text = ""
    return f"HTTP {status} {str(text)[:200]}".strip()


def _transient(status: int) -> bool:
    # 401/403: our credential is wrong or expired, which an operator fixes; 408/429 and 5xx pass by themselves.
    return status in (401, 403, 408, 429) or status >= 500


# The request certainly never left: no connection could be made (or none was free in time).
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
# Anything else may have reached the recipient: a cut connection, a read timeout, a truncated answer.
_MAYBE_SENT = (aiohttp.ClientError, TimeoutError)


class FkAdapter:
    """Försäkringskassan's API (deploy/simulators/fk speaks it): POST /v1/intyg with an Idempotency-Key,
    GET /v1/intyg/{id}/receipts?idempotency_key=…, POST /v1/intyg/{id}/revocation.

    aiohttp, not httpx: httpcore's connection pool checks every pooled connection's socket on every request, which
    cost about 60 % of dispatch's CPU at 32 connections; aiohttp's pool does not (see services/dispatch/README.md).
    """

    def __init__(
        self,
        recipient: Recipient,
        *,
        token: str,
        sender: str,
        timeout: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._sender_json = orjson.dumps(sender).decode()
        self._base = recipient.endpoint.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # connect also bounds the wait for a free pooled connection; sock_read bounds the wait for the answer.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop (aiohttp's requirement).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, limit_per_host=self._max_connections, ssl=self._ssl or True
                ),
                raise_for_status=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def _call(
        self, method: str, path: str, *, body: bytes | None = None, key: uuid.UUID | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:  # fmt: skip
        headers = {"Idempotency-Key": str(key)} if key is not None else None
        async with self._client().request(
            method, self._base + path, data=body, headers=headers, params=params
        ) as response:
            return response.status, await response.read()

    async def send(self, parcel: Parcel) -> SendAnswer:
        # The stored certificate JSON is spliced in as it is: it was validated when released.
        body = f'{{"certificate":{parcel.document},"sender":{self._sender_json}}}'.encode()
        try:
            status, answer = await self._call("POST", "/v1/intyg", body=body, key=parcel.call_key)
        except _NOT_SENT as exc:
            return Failed(f"{type(exc).__name__}", maybe_delivered=False)  # the request never left
        except _MAYBE_SENT as exc:
            return Failed(f"{type(exc).__name__}", maybe_delivered=True)  # sent, answer lost
        if status in (200, 201):
            try:
                reference = str(orjson.loads(answer)["receipt_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return Failed(f"HTTP {status} with an unreadable receipt", maybe_delivered=True)
            return Delivered(reference)
        if _transient(status):
            # A 503 (or a refused credential) comes before anything is stored; a 500 or 504 may come after.
            return Failed(_detail(status, answer), maybe_delivered=status not in (401, 403, 429, 503))
        return Rejected(_detail(status, answer))

    async def was_received(self, certificate_id: str, call_key: uuid.UUID) -> ReceivedAnswer:
        try:
            status, answer = await self._call(
                "GET", f"/v1/intyg/{certificate_id}/receipts", params={"idempotency_key": str(call_key)}
            )
        except _MAYBE_SENT as exc:
            return Failed(type(exc).__name__, maybe_delivered=True)
        if status != 200:
            return Failed(_detail(status, answer), maybe_delivered=True)
        try:
            receipts = orjson.loads(answer)
        except orjson.JSONDecodeError:
            return Failed("HTTP 200 with an unreadable list of receipts", maybe_delivered=True)
        if isinstance(receipts, list) and receipts:
            return Delivered(str(receipts[0].get("receipt_id")))
        return NotReceived()

    async def revoke(self, certificate_id: str, call_key: uuid.UUID) -> SendAnswer:
        try:
            status, answer = await self._call(
                "POST", f"/v1/intyg/{certificate_id}/revocation",
                body=f'{{"sender":{self._sender_json}}}'.encode(), key=call_key,
            )  # fmt: skip
        except _MAYBE_SENT as exc:
            return Failed(type(exc).__name__, maybe_delivered=True)
        if status in (200, 201):
            try:
                return Delivered(str(orjson.loads(answer).get("revocation_id")))
            except (orjson.JSONDecodeError, AttributeError):
                return Failed(f"HTTP {status} with an unreadable answer", maybe_delivered=True)
        if status == 404:
            return Rejected("the recipient never received the certificate")
        if _transient(status):
            return Failed(_detail(status, answer), maybe_delivered=True)
        return Rejected(_detail(status, answer))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
        ssl_context=client_context(settings.recipient_ca_file) if recipient.endpoint.startswith("https:") else None,
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
