"""The read model: the one idempotent consumer (`portal-read-model`) of consent.released.v1 and
dispatch.outcomes.v1, and what each event does to the portal's tables."""

from __future__ import annotations

import structlog

from schemas.envelope import Envelope
from schemas.events import (
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    DispatchFailed,
    DispatchSucceeded,
)
from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES
from services.kit.consumer import IdempotentConsumer
from services.kit.db import Connection, Pool
from services.kit.settings import ServiceSettings
from services.kit.withdrawals import is_stale, record_withdrawal, withdrawn_generations
from services.portal import repo
from services.portal.domain import RECIPIENT_NAMES

log = structlog.get_logger(__name__)
READ_MODEL = "portal-read-model"
READ_MODEL_TOPICS = [CONSENT_RELEASED, DISPATCH_OUTCOMES]


async def on_event(conn: Connection, envelope: Envelope) -> None:
    """Apply one event of consent.released.v1 or dispatch.outcomes.v1 to the read model (inside the consumer's
    transaction, next to its tracking row)."""
    data = envelope.data
    if isinstance(data, CertificateReleased):
        withdrawn = (await withdrawn_generations(conn, [data.citizen_ref])).get(data.citizen_ref)
        if is_stale(data.consent_generation, withdrawn):
            log.info(
                "portal.certificate.stale_release_dropped",
                citizen_ref=data.citizen_ref,
                certificate_id=data.certificate.id,
                generation=data.consent_generation,
                withdrawn_generation=withdrawn,
            )
            return
        added = await repo.insert_certificate(
            conn,
            citizen_ref=data.citizen_ref,
            certificate=data.certificate,
            test_patient=data.test_patient,
            released_at=data.released_at,
        )
        log.info(
            "portal.certificate.released",
            citizen_ref=data.citizen_ref,
            certificate_id=data.certificate.id,
            added=added,
        )
    elif isinstance(data, CertificateRevoked):
        await repo.revoke(conn, data.citizen_ref, data.certificate_id, data.revoked_at)
        log.info("portal.certificate.revoked", citizen_ref=data.citizen_ref, certificate_id=data.certificate_id)
    elif isinstance(data, CitizenDataWithdrawn):
        await record_withdrawal(conn, data.citizen_ref, data.consent_generation, data.at)
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


def read_model_consumer(settings: ServiceSettings, pool: Pool) -> IdempotentConsumer:
    """The read-model consumer on `pool` (a resetting pool: the consumer's own, not the requests')."""
    return IdempotentConsumer(settings, pool, name=READ_MODEL, topics=READ_MODEL_TOPICS, handler=on_event)
