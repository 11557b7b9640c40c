"""Dispatch's use cases on events: certificates it may send (released / revoked / withdrawn) and send requests.

Each runs in the idempotent consumer's transaction; outcomes go to the outbox in the same transaction.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter

from schemas.envelope import Envelope, new_envelope
from schemas.events import (
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    DispatchFailed,
    DispatchRequested,
    DispatchSucceeded,
    EventData,
    FailureCode,
)
from schemas.topics import DISPATCH_OUTCOMES
from services.dispatch import repo
from services.dispatch.domain import (
    AlreadyQueued,
    AlreadySent,
    Queue,
    Refuse,
    RequestDecision,
    SendKind,
    SendState,
    decide_request,
    reason,
)
from services.dispatch.settings import DispatchSettings
from services.kit.consumer import HandlerError
from services.kit.db import Connection, Pool
from services.kit.outbox import add_many_to_outbox, add_to_outbox, outbox_values
from services.kit.withdrawals import is_stale, record_withdrawal, withdrawn_generations

log = structlog.get_logger(__name__)

SOURCE = "minaintyg/dispatch"
Clock = Callable[[], datetime]
OUTCOMES = Counter("dispatch_outcomes_total", "Outcome events emitted", ["recipient", "outcome", "code"])


@dataclass(frozen=True)
class Dispatch:
    settings: DispatchSettings
    pool: Pool
    clock: Clock

    @property
    def lock_class(self) -> int:
        """Namespace of this schema's per-certificate advisory locks."""
        return zlib.crc32(f"{self.settings.db_schema}.certificates".encode()) & 0x7FFFFFFF

    @property
    def deadline(self) -> timedelta:
        return timedelta(hours=self.settings.deadline_hours)

    async def emit_outcome(
        self, conn: Connection, data: DispatchSucceeded | DispatchFailed, *, correlation_id: str,
        traceparent: str | None = None,
    ) -> None:  # fmt: skip
        envelope = new_envelope(
            data,
            source=SOURCE,
            time=self.clock(),
            correlation_id=correlation_id,
            subject=data.certificate_id,
            traceparent=traceparent,
        )
        await add_to_outbox(conn, self.settings.topic(DISPATCH_OUTCOMES.name), data.certificate_id, envelope)
        self.count_outcome(data)

    def outcome_row(self, data: DispatchSucceeded | DispatchFailed, *, correlation_id: str) -> tuple[object, ...]:
        """The outbox row of an outcome (for statements that write it themselves); count it once committed."""
        envelope = new_envelope(
            data, source=SOURCE, time=self.clock(), correlation_id=correlation_id, subject=data.certificate_id
        )
        return outbox_values(self.settings.topic(DISPATCH_OUTCOMES.name), data.certificate_id, envelope)

    @staticmethod
    def count_outcome(data: DispatchSucceeded | DispatchFailed) -> None:
        code = data.reason_code if isinstance(data, DispatchFailed) else ""
        OUTCOMES.labels(data.recipient_id, data.event_type, code).inc()

    def failed(
        self, *, code: FailureCode, recipient_name: str, request_key: uuid.UUID, certificate_id: str,
        recipient_id: str, citizen_ref: str, certificate_type: str = "",
    ) -> DispatchFailed:  # fmt: skip
        return DispatchFailed(
            idempotency_key=request_key, certificate_id=certificate_id, recipient_id=recipient_id,
            citizen_ref=citizen_ref, failed_at=self.clock(), reason_code=code,
            reason=reason(code, recipient_name, certificate_type=certificate_type,
                          deadline_hours=self.settings.deadline_hours),
        )  # fmt: skip


async def on_event(dispatch: Dispatch, conn: Connection, envelope: Envelope) -> None:
    """Consumer handler for consent.released.v1 and portal.dispatch-requests.v1: a batch of one, so there is one
    implementation."""
    await on_batch(dispatch, conn, [envelope])


async def _other_event(dispatch: Dispatch, conn: Connection, envelope: Envelope) -> None:
    """An event that is not a send request."""
    data: EventData = envelope.data
    now = dispatch.clock()
    if isinstance(data, CertificateReleased):
        withdrawn = (await withdrawn_generations(conn, [data.citizen_ref])).get(data.citizen_ref)
        if is_stale(data.consent_generation, withdrawn):
            log.info(
                "dispatch.certificate.stale_release_dropped",
                certificate_id=data.certificate.id,
                citizen_ref=data.citizen_ref,
                generation=data.consent_generation,
                withdrawn_generation=withdrawn,
            )
            return
        await repo.lock_certificate(conn, dispatch.lock_class, data.certificate.id)
        await repo.store_released(
            conn, certificate_id=data.certificate.id, citizen_ref=data.citizen_ref,
            certificate_type=data.certificate.type,
            test_patient=data.test_patient or data.certificate.patient.test_patient,
            document=data.certificate.model_dump_json(), at=now,
        )  # fmt: skip
        await retell_sends(dispatch, conn, data, envelope.correlationid)
        await answer_waiting(dispatch, conn, data.certificate.id)
    elif isinstance(data, CertificateRevoked):
        await certificate_revoked(dispatch, conn, data, now)
    elif isinstance(data, CitizenDataWithdrawn):
        await record_withdrawal(conn, data.citizen_ref, data.consent_generation, data.at)
        dropped = await repo.withdraw_citizen(conn, data.citizen_ref, now)
        log.info("dispatch.citizen.withdrawn", citizen_ref=data.citizen_ref, copies_dropped=dropped)
    else:
        raise HandlerError(f"unexpected event type {envelope.type} for dispatch")


async def retell_sends(dispatch: Dispatch, conn: Connection, data: CertificateReleased, correlation_id: str) -> None:
    """The ledger's delivered sends of a certificate released again (after a new consent), told again as
    dispatch.succeeded with their request key and delivery time: the portal, which forgot them at the withdrawal,
    shows the certificate as sent (and does not offer to send it again). Nothing is sent to the recipient."""
    for sent in await repo.delivered_recipients(conn, data.certificate.id):
        if sent.citizen_ref != data.citizen_ref or sent.finished_at is None:
            continue
        succeeded = DispatchSucceeded(
            idempotency_key=sent.request_key,
            certificate_id=sent.certificate_id,
            recipient_id=sent.recipient_id,
            citizen_ref=sent.citizen_ref,
            delivered_at=sent.finished_at,
            recipient_reference=sent.recipient_reference,
        )
        await dispatch.emit_outcome(conn, succeeded, correlation_id=correlation_id)
        log.info("dispatch.send.retold", certificate_id=sent.certificate_id, recipient=sent.recipient_id)


async def certificate_revoked(dispatch: Dispatch, conn: Connection, data: CertificateRevoked, now: datetime) -> None:
    """Forget the copy, and forward the revocation to every recipient that got the certificate (each revocation
    keeps the copy until it is delivered: a RIV-TA RevokeCertificate names the patient and the issuer)."""
    document = await repo.document_of(conn, data.certificate_id)
    await repo.mark_revoked(
        conn, certificate_id=data.certificate_id, citizen_ref=data.citizen_ref,
        certificate_type=data.certificate_type, at=now,
    )  # fmt: skip
    await answer_waiting(dispatch, conn, data.certificate_id)
    delivered = await repo.delivered_recipients(conn, data.certificate_id)
    for sent in delivered:
        await repo.queue_send(
            conn, kind=SendKind.REVOKE, certificate_id=data.certificate_id, recipient_id=sent.recipient_id,
            citizen_ref=data.citizen_ref, certificate_type=data.certificate_type, request_key=sent.request_key,
            now=now, deadline_at=now + dispatch.deadline, revoked_document=document,
        )  # fmt: skip
    log.info("dispatch.certificate.revoked", certificate_id=data.certificate_id, forwarded_to=len(delivered))


async def dispatch_requested(dispatch: Dispatch, conn: Connection, data: DispatchRequested, envelope: Envelope) -> None:
    await decide_and_apply(
        dispatch,
        conn,
        repo.WaitingRequest(
            data.idempotency_key,
            data.certificate_id,
            data.recipient_id,
            data.citizen_ref,
            data.requested_at,
            envelope.correlationid,
        ),
        may_wait=True,
    )


async def answer_waiting(dispatch: Dispatch, conn: Connection, certificate_id: str) -> None:
    """The certificate came: the requests that waited for it are decided now."""
    for waiting in await repo.take_waiting(conn, certificate_id):
        await decide_and_apply(dispatch, conn, waiting, may_wait=False)


async def refuse_expired(dispatch: Dispatch) -> int:
    """Requests whose certificate never came within the grace time are refused as unknown."""
    async with dispatch.pool.acquire() as conn, conn.transaction():
        expired = await repo.take_expired(conn, dispatch.clock())
        for waiting in expired:
            await decide_and_apply(dispatch, conn, waiting, may_wait=False)
    return len(expired)


@dataclass
class Writes:
    """The writes of a batch of requests, made together at its end (in the same transaction)."""

    queued: list[tuple[object, ...]] = field(default_factory=list)
    outbox: list[tuple[object, ...]] = field(default_factory=list)
    outcomes: list[DispatchSucceeded | DispatchFailed] = field(default_factory=list)

    async def flush(self, conn: Connection) -> None:
        await repo.queue_sends(conn, self.queued)
        await add_many_to_outbox(conn, self.outbox)
        for outcome in self.outcomes:
            Dispatch.count_outcome(outcome)
        self.queued, self.outbox, self.outcomes = [], [], []


async def on_batch(dispatch: Dispatch, conn: Connection, envelopes: list[Envelope]) -> None:
    """Consumer batch handler, in order: each run of consecutive send requests is decided on contexts read in one
    round trip, with its ledger rows and outcomes written in two; any other event on its own."""
    run: list[Envelope] = []
    for envelope in envelopes:
        if isinstance(envelope.data, DispatchRequested):
            run.append(envelope)
            continue
        await _requests(dispatch, conn, run)
        run = []
        structlog.contextvars.bind_contextvars(correlation_id=envelope.correlationid)
        await _other_event(dispatch, conn, envelope)
    await _requests(dispatch, conn, run)
    structlog.contextvars.unbind_contextvars("correlation_id")


async def _requests(dispatch: Dispatch, conn: Connection, requests: list[Envelope]) -> None:
    if not requests:
        return
    pairs = list(dict.fromkeys(_pair(e) for e in requests))
    contexts: dict[tuple[str, str], repo.RequestContext | None] = dict(await repo.request_contexts(conn, pairs))
    writes = Writes()
    for envelope in requests:
        data = envelope.data
        assert isinstance(data, DispatchRequested)
        structlog.contextvars.bind_contextvars(correlation_id=envelope.correlationid)
        pair = _pair(envelope)
        context = contexts.get(pair)
        if context is None or context.certificate is None:
            # The certificate is not here (yet): the one-by-one path, which waits for a release being committed.
            await writes.flush(conn)
            await dispatch_requested(dispatch, conn, data, envelope)
            contexts[pair] = None  # later requests of it read the ledger again
            continue
        waiting = repo.WaitingRequest(
            data.idempotency_key, data.certificate_id, data.recipient_id, data.citizen_ref, data.requested_at,
            envelope.correlationid,
        )  # fmt: skip
        decision = await decide_and_apply(dispatch, conn, waiting, may_wait=True, context=context, writes=writes)
        if isinstance(decision, Queue):
            contexts[pair] = replace(context, send_state=SendState.PENDING)  # what the ledger now says
    structlog.contextvars.unbind_contextvars("correlation_id")
    await writes.flush(conn)


def _pair(envelope: Envelope) -> tuple[str, str]:
    data = envelope.data
    assert isinstance(data, DispatchRequested)
    return data.certificate_id, data.recipient_id


async def decide_and_apply(
    dispatch: Dispatch, conn: Connection, data: repo.WaitingRequest, *, may_wait: bool,
    context: repo.RequestContext | None = None, writes: Writes | None = None,
) -> RequestDecision | None:  # fmt: skip
    """Decide a send request and apply the decision (ledger row, outcome event, or a wait for the certificate).

    `context`: read already (a batch); `writes`: collect the writes there instead of making them now. Returns the
    decision, None for a wait."""
    now = dispatch.clock()
    if context is None:
        context = await repo.request_context(conn, data.certificate_id, data.recipient_id)
    if may_wait and context.certificate is None:
        # Its release may be committing right now in another transaction: wait for it, then look again.
        await repo.lock_certificate(conn, dispatch.lock_class, data.certificate_id)
        context = await repo.request_context(conn, data.certificate_id, data.recipient_id)
    recipient, certificate = context.recipient, context.certificate
    decision = decide_request(recipient, certificate, data.citizen_ref, context.send_state)
    name = recipient.name if recipient else data.recipient_id
    if may_wait and certificate is None and isinstance(decision, Refuse) and decision.code == "UNKNOWN_CERTIFICATE":
        expires = now + timedelta(seconds=dispatch.settings.unknown_certificate_grace_seconds)
        await repo.wait_for_certificate(conn, data, expires)
        log.info("dispatch.request.waiting", certificate_id=data.certificate_id, recipient=data.recipient_id)
        return None
    if isinstance(decision, Refuse):
        outcome = dispatch.failed(
            code=decision.code, recipient_name=name, request_key=data.request_key,
            certificate_id=data.certificate_id, recipient_id=data.recipient_id, citizen_ref=data.citizen_ref,
            certificate_type=certificate.type if certificate else "",
        )  # fmt: skip
        await _emit(dispatch, conn, outcome, data.correlation_id, writes)
        log.info("dispatch.request.refused", certificate_id=data.certificate_id, recipient=data.recipient_id,
                 code=decision.code, citizen_ref=data.citizen_ref)  # fmt: skip
    elif isinstance(decision, AlreadySent):
        assert context.delivered_at is not None
        succeeded = DispatchSucceeded(
            idempotency_key=data.request_key, certificate_id=data.certificate_id, recipient_id=data.recipient_id,
            citizen_ref=data.citizen_ref, delivered_at=context.delivered_at,
            recipient_reference=context.recipient_reference,
        )  # fmt: skip
        await _emit(dispatch, conn, succeeded, data.correlation_id, writes)
        log.info("dispatch.request.already_sent", certificate_id=data.certificate_id, recipient=data.recipient_id)
    elif isinstance(decision, AlreadyQueued):
        log.info("dispatch.request.already_queued", certificate_id=data.certificate_id, recipient=data.recipient_id)
    else:
        assert certificate is not None
        values = repo.queued_values(
            kind=SendKind.SEND, certificate_id=data.certificate_id, recipient_id=data.recipient_id,
            citizen_ref=data.citizen_ref, certificate_type=certificate.type, request_key=data.request_key,
            now=now, deadline_at=now + dispatch.deadline,
        )  # fmt: skip
        if writes is not None:
            writes.queued.append(values)
        else:
            await repo.queue_sends(conn, [values])
        log.info("dispatch.request.queued", certificate_id=data.certificate_id, recipient=data.recipient_id,
                 citizen_ref=data.citizen_ref)  # fmt: skip
    return decision


async def _emit(
    dispatch: Dispatch, conn: Connection, outcome: DispatchSucceeded | DispatchFailed, correlation_id: str,
    writes: Writes | None,
) -> None:  # fmt: skip
    if writes is None:
        await dispatch.emit_outcome(conn, outcome, correlation_id=correlation_id)
    else:
        writes.outbox.append(dispatch.outcome_row(outcome, correlation_id=correlation_id))
        writes.outcomes.append(outcome)
