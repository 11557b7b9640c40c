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
from datetime import UTC, datetime
from typing import Protocol

import aiohttp
import orjson
from pydantic import ValidationError

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.riv import client as riv_client
from schemas.riv.mapping import from_certificate, utc_to_swedish_time
from schemas.riv.transport import Intyg, Result, Revocation
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE, Interaction
from services.dispatch.domain import Recipient
from services.dispatch.settings import DispatchSettings
from services.kit.logging import mask_personnummer
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

    async def revoke(self, certificate_id: str, call_key: uuid.UUID, document: str | None = None) -> SendAnswer:
        """Tell the recipient the certificate was revoked; idempotent by key. `document`: the revoked certificate's
        copy when dispatch kept it (a recipient whose revocation names the patient or the issuer needs it)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class _Connections:
    """A recipient's pooled connections: one aiohttp session, created on first use inside the running event loop
    (aiohttp's requirement)."""

    def __init__(
        self, *, headers: dict[str, str], timeout: float, max_connections: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        self._headers = headers
        # connect also bounds the wait for a free pooled connection; sock_read bounds the wait for the answer.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
        self._connections = _Connections(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout, max_connections=max_connections, ssl_context=ssl_context,
        )  # fmt: skip
        self._client = self._connections.session

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

    async def revoke(self, certificate_id: str, call_key: uuid.UUID, document: str | None = None) -> SendAnswer:
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
        await self._connections.close()


# --- Försäkringskassan over RIV-TA ------------------------------------------------------------------------


def classify(result: Result) -> SendAnswer:
    """A RIV-TA answer for the ledger. OK is delivered, INFO too (the recipient had it: never sent again as new);
    ERROR/TECHNICAL_ERROR passes by itself; any other ERROR (VALIDATION_ERROR, APPLICATION_ERROR, REVOKED) never
    will. A SOAP Fault or an HTTP error is classified by its status as the JSON API's answers are. The receiver's
    text goes into the ledger and the log, so a personnummer in it (a schema error quoting a value) is masked."""
    text = mask_personnummer(result.result_text or "")[:200]
    if result.result_code in ("OK", "INFO"):
        return Delivered(None)
    if result.result_code == "ERROR":
        if result.error_id == "TECHNICAL_ERROR":
            return Failed(f"ERROR/TECHNICAL_ERROR {text}".strip(), maybe_delivered=False)
        return Rejected(f"ERROR/{result.error_id} {text}".strip())
    status = riv_client.http_status(result)
    if status is None:  # no RIV-TA answer and no HTTP status: whatever happened may have stored it
        return Failed(f"{result.result_code} {text}".strip(), maybe_delivered=True)
    detail = f"HTTP {status} {text}".strip()
    if _transient(status):
        return Failed(detail, maybe_delivered=status not in (401, 403, 429, 503))
    return Rejected(detail)


class FkRivAdapter:
    """Försäkringskassan over RIV-TA (deploy/simulators/fk serves it too): the certificate mapped to
    RegisterCertificate v3, a revocation as RevokeCertificate v2, both to the logical address
    DISPATCH_FK_LOGICAL_ADDRESS over mutual TLS with Mina intyg's function certificate.

    RIV-TA has no idempotency key and no "did you receive it?": the receiver knows a certificate by its id, and the
    same one again is answered INFO without a second receipt. So reconciliation answers NotReceived, and the resend
    it leads to is harmless (INFO counts as delivered).
    """

    def __init__(
        self, recipient: Recipient, *, logical_address: str, timeout: float, max_connections: int,
        ssl_context: ssl.SSLContext | None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._base = recipient.endpoint.rstrip("/")
        self._logical_address = logical_address
        self._clock = clock
        self._connections = _Connections(
            headers={}, timeout=timeout, max_connections=max_connections, ssl_context=ssl_context
        )
        self._client = self._connections.session

    async def _call(self, interaction: Interaction, message: bytes) -> SendAnswer:
        try:
            async with self._client().post(
                self._base + interaction.path, data=message, headers=riv_client.headers(interaction)
            ) as response:
                status, answer = response.status, await response.read()
        except _NOT_SENT as exc:
            return Failed(type(exc).__name__, maybe_delivered=False)
        except _MAYBE_SENT as exc:
            return Failed(type(exc).__name__, maybe_delivered=True)
        return classify(riv_client.read_answer(status, answer))

    def intyg(self, document: str) -> Intyg:
        """The stored certificate (our JSON) in the transport format, sent now."""
        return from_certificate(CERTIFICATE_ADAPTER.validate_json(document), sent_at=self._clock())

    async def send(self, parcel: Parcel) -> SendAnswer:
        try:
            intyg = self.intyg(parcel.document)
        except (ValidationError, ValueError) as exc:  # validated when released: only a changed model gets here
            return Rejected(f"not mappable to RegisterCertificate v3: {type(exc).__name__}")
        return await self._call(REGISTER_CERTIFICATE, riv_client.register_message(intyg, self._logical_address))

    async def was_received(self, certificate_id: str, call_key: uuid.UUID) -> ReceivedAnswer:
        return NotReceived()

    async def revoke(self, certificate_id: str, call_key: uuid.UUID, document: str | None = None) -> SendAnswer:
        if document is None:
            # Only a send delivered while its certificate was being revoked gets here: its copy had gone already.
            return Rejected("RevokeCertificate v2 names the patient and the issuer; the certificate's copy is gone")
        try:
            intyg = self.intyg(document)
        except (ValidationError, ValueError) as exc:
            return Rejected(f"not mappable to RevokeCertificate v2: {type(exc).__name__}")
        revocation = Revocation(
            intygs_id=intyg.intygs_id,
            person_id=intyg.patient.person_id,
            skickat_tidpunkt=utc_to_swedish_time(self._clock()),
            skickat_av=intyg.skapad_av,
        )
        return await self._call(REVOKE_CERTIFICATE, riv_client.revoke_message(revocation, self._logical_address))

    async def close(self) -> None:
        await self._connections.close()


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

    async def revoke(self, certificate_id: str, call_key: uuid.UUID, document: str | None = None) -> SendAnswer:
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
def _fk_riv(recipient: Recipient, settings: DispatchSettings) -> RecipientAdapter:
    return FkRivAdapter(
        recipient,
        logical_address=settings.fk_logical_address,
        timeout=settings.call_timeout_seconds,
        max_connections=recipient.max_concurrency,
        ssl_context=settings.riv_client_context() if recipient.endpoint.startswith("https:") else None,
    )


ADAPTER_KINDS: dict[str, AdapterFactory] = {"fk-http": _fk, "fk-riv": _fk_riv}
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
