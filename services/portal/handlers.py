"""Orchestration: the read-model consumer's handler, and the citizen's actions that change state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import structlog

from schemas.envelope import Envelope, new_envelope
from schemas.events import (
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    DispatchFailed,
    DispatchRequested,
    DispatchSucceeded,
)
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.kit.db import Connection, Pool
from services.kit.outbox import add_to_outbox
from services.kit.settings import ServiceSettings
from services.portal import repo
from services.portal.domain import RECIPIENT_NAMES, may_send
from services.portal.views import dispatch_views

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
SOURCE = "minaintyg/portal"


async def on_event(conn: Connection, envelope: Envelope) -> None:
    """Apply one event of consent.released.v1 or dispatch.outcomes.v1 to the read model (inside the consumer's
    transaction, next to its tracking row)."""
    data = envelope.data
    if isinstance(data, CertificateReleased):
        document = data.certificate.model_dump(mode="json")
        added = await repo.insert_certificate(
            conn,
            citizen_ref=data.citizen_ref,
            document=document,
            test_patient=data.test_patient,
            released_at=data.released_at,
            signed_at=data.certificate.signed_at,
        )
        log.info("portal.certificate.released", citizen_ref=data.citizen_ref, certificate_id=data.certificate.id,
                 added=added)  # fmt: skip
    elif isinstance(data, CertificateRevoked):
        await repo.revoke(conn, data.citizen_ref, data.certificate_id, data.revoked_at)
        log.info("portal.certificate.revoked", citizen_ref=data.citizen_ref, certificate_id=data.certificate_id)
    elif isinstance(data, CitizenDataWithdrawn):
        deleted = await repo.delete_citizen_data(conn, data.citizen_ref)
        log.info("portal.citizen.data_withdrawn", citizen_ref=data.citizen_ref, certificates=deleted)
    elif isinstance(data, DispatchSucceeded | DispatchFailed):
        succeeded = isinstance(data, DispatchSucceeded)
        at = data.delivered_at if isinstance(data, DispatchSucceeded) else data.failed_at
        changed = await repo.record_dispatch_outcome(
            conn,
            idempotency_key=data.idempotency_key,
            certificate_id=data.certificate_id,
            citizen_ref=data.citizen_ref,
            recipient_id=data.recipient_id,
            succeeded=succeeded,
            at=at,
            reason_code=None if isinstance(data, DispatchSucceeded) else data.reason_code,
            reason=None if isinstance(data, DispatchSucceeded) else data.reason,
        )
        if changed and succeeded:
            name = RECIPIENT_NAMES.get(data.recipient_id, data.recipient_id)
            await repo.add_history(conn, data.certificate_id, name, "SENT", name, at)
        log.info("portal.dispatch.outcome", certificate_id=data.certificate_id, succeeded=succeeded, changed=changed)
    else:
        log.debug("portal.event.ignored", type=envelope.type)


class SendRefused(Exception):
    """Sending is not offered for this certificate (replaced, already sent, or a type the recipient does not take)."""


async def request_dispatch(
    pool: Pool,
    settings: ServiceSettings,
    *,
    citizen_ref: str,
    certificate_id: str,
    recipient_id: str,
    idempotency_key: UUID,
    now: datetime,
    correlation_id: str,
) -> str | None:
    """Record a send request and its event in one transaction. Returns 'requested' or 'duplicate' (the same key
    again: nothing more is sent), None if the certificate is not this citizen's; raises SendRefused."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.lock_certificate(conn, citizen_ref, certificate_id)
        if row is None:
            return None
        existing = await repo.dispatches(conn, certificate_id)
        if any(d["idempotency_key"] == idempotency_key for d in existing):
            return "duplicate"
        # Test patients' certificates never go to a recipient (the platform marks them).
        if row["test_patient"] or not may_send(row["type"], row["replaced_by"] is not None, dispatch_views(existing)):
            raise SendRefused(certificate_id)
        outcome = await repo.insert_dispatch_request(
            conn,
            idempotency_key=idempotency_key,
            certificate_id=certificate_id,
            citizen_ref=citizen_ref,
            recipient_id=recipient_id,
            at=now,
        )
        if outcome == "duplicate":
            return "duplicate"
        if outcome != "requested":
            raise SendRefused(certificate_id)  # another key for this certificate, or one already on its way
        event = DispatchRequested(
            idempotency_key=idempotency_key,
            certificate_id=certificate_id,
            recipient_id=recipient_id,
            citizen_ref=citizen_ref,
            requested_at=now,
        )
        envelope = new_envelope(event, source=SOURCE, time=now, correlation_id=correlation_id, subject=certificate_id)
        await add_to_outbox(conn, settings.topic(PORTAL_DISPATCH_REQUESTS.name), certificate_id, envelope)
        await repo.log_access(conn, citizen_ref, certificate_id, "send", "ok", now)
    log.info("portal.dispatch.requested", citizen_ref=citizen_ref, certificate_id=certificate_id,
             recipient_id=recipient_id)  # fmt: skip
    return "requested"
