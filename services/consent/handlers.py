"""Consent's use cases: certificates arriving at the gate, and the citizen giving or withdrawing consent.

Each runs in one transaction that first locks the citizen's row, so arrivals and consent changes for one citizen
happen one at a time and in one order, whatever partition, replica or API call they come from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

import orjson
import structlog
from prometheus_client import Counter

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, encode_fresh, json_time
from schemas.events import (
    CertificateIssued,
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    ConsentGiven,
    ConsentWithdrawn,
    EventData,
)
from schemas.topics import CONSENT_EVENTS, CONSENT_RELEASED
from services.consent import repo
from services.consent.domain import (
    Arrival,
    CertificateStatus,
    Consent,
    GiveOutcome,
    Revocation,
    WithdrawOutcome,
    decide_arrival,
    decide_give,
    decide_revocation,
    decide_withdraw,
)
from services.consent.settings import ConsentSettings
from services.kit.consumer import HandlerError
from services.kit.db import Connection, Pool
from services.kit.outbox import add_many_to_outbox, outbox_values_of_bytes
from services.kit.tracing import continue_trace

log = structlog.get_logger(__name__)

SOURCE = "minaintyg/consent"
RELEASED = Counter("consent_certificates_released_total", "Certificates released through the gate")
HELD = Counter("consent_certificates_held_total", "Certificates held for want of consent")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Gate:
    settings: ConsentSettings
    pool: Pool
    clock: Clock
    on_commit: Callable[[], None]

    async def emit(
        self, conn: Connection, topic: str, data: EventData, *, citizen_ref: str, correlation_id: str,
        subject: str | None = None, traceparent: str | None = None,
    ) -> None:  # fmt: skip
        row = event_row(
            self.settings.topic(topic),
            citizen_ref,
            type(data),
            orjson.Fragment(data.model_dump_json()),
            at=json_time(self.clock()),
            correlation_id=correlation_id,
            subject=subject,
            traceparent=traceparent,
        )
        await add_many_to_outbox(conn, [row])


def event_row(
    topic: str,
    key: str,
    event_type: type[EventData],
    data: dict[str, Any] | orjson.Fragment,
    *,
    at: str,
    correlation_id: str,
    subject: str | None = None,
    traceparent: str | None = None,
) -> tuple[object, ...]:
    """The outbox row of a new event: the one way consent encodes what it emits (`encode_fresh`, the very bytes
    and headers `outbox_values(topic, key, new_envelope(...))` gives — tests hold them equal). `data` is the
    payload's JSON (`orjson.Fragment` of `model_dump_json()`) or its fields in JSON form; `at` is `json_time` of
    the event time."""
    event_id = uuid4()
    value = encode_fresh(
        event_type,
        data,
        event_id=event_id,
        source=SOURCE,
        time=at,
        correlation_id=correlation_id,
        subject=subject,
        traceparent=traceparent,
    )
    return outbox_values_of_bytes(
        topic,
        key,
        value,
        event_id=event_id,
        event_type=event_type.event_type,
        correlation_id=correlation_id,
        traceparent=traceparent,
    )


async def on_intake_event(gate: Gate, conn: Connection, envelope: Envelope) -> None:
    """Consumer handler for intake.certificates.v1 (runs inside the idempotent consumer's transaction): a batch
    of one, so there is one implementation."""
    await on_intake_batch(gate, conn, [envelope])


async def on_intake_batch(gate: Gate, conn: Connection, envelopes: list[Envelope]) -> None:
    """Intake's events in order, with the same effect as handling them one by one.

    The batch's citizens are locked first, so their consent cannot change while it runs; runs of consecutive
    arrivals are then stored with one statement, and a revocation is handled on its own, in order.
    """
    consents = await repo.lock_citizens(conn, [_citizen_of(e) for e in envelopes])
    run: list[tuple[Envelope, CertificateIssued]] = []
    for envelope in envelopes:
        data = envelope.data
        if isinstance(data, CertificateIssued):
            run.append((envelope, data))
            continue
        await _arrivals(gate, conn, run, consents)
        run = []
        if not isinstance(data, CertificateRevoked):
            raise HandlerError(f"unexpected event type {envelope.type} on the intake topic")
        await certificate_revoked(gate, conn, data, envelope)
    await _arrivals(gate, conn, run, consents)


def _citizen_of(envelope: Envelope) -> str:
    ref = getattr(envelope.data, "citizen_ref", None)
    if not isinstance(ref, str):
        raise HandlerError(f"unexpected event type {envelope.type} on the intake topic")
    return ref


async def _arrivals(
    gate: Gate,
    conn: Connection,
    run: list[tuple[Envelope, CertificateIssued]],
    consents: dict[str, tuple[Consent, int]],
) -> None:
    if not run:
        return
    now = gate.clock()
    decisions = [decide_arrival(consents[data.citizen_ref][0], None) for _, data in run]
    arriving = [
        repo.Arriving(
            certificate_id=data.certificate.id,
            citizen_ref=data.citizen_ref,
            certificate_type=data.certificate.type,
            test_patient=data.test_patient,
            document=data.certificate.model_dump_json(),
            released=decision is Arrival.RELEASE,
            traceparent=envelope.traceparent,
        )
        for (envelope, data), decision in zip(run, decisions, strict=True)
    ]
    new = await repo.insert_arrivals(conn, arriving, now)
    topic = gate.settings.topic(CONSENT_RELEASED.name)
    at = json_time(now)
    releases = []
    for (envelope, data), decision, stored in zip(run, decisions, arriving, strict=True):
        if decision is Arrival.RELEASE and data.certificate.id in new:
            new.discard(data.certificate.id)  # the same certificate twice in a run is released once
            generation = consents[data.citizen_ref][1]
            releases.append(_release(topic, envelope, data, stored.document, at, generation))
    await add_many_to_outbox(conn, releases)
    RELEASED.inc(len(releases))
    HELD.inc(sum(1 for d in decisions if d is Arrival.HOLD))
    log.info("consent.certificates.gated", count=len(run), released=len(releases))


def _release(
    topic: str, envelope: Envelope, data: CertificateIssued, document: str, at: str, generation: int
) -> tuple[object, ...]:
    """The outbox row of a certificate.released for an arrival, built directly from the validated arrival, with
    the certificate's JSON made for storage spliced in rather than serialised again."""
    return _released_row(
        topic,
        data.citizen_ref,
        data.certificate.id,
        document,
        data.test_patient,
        at,
        generation=generation,
        correlation_id=envelope.correlationid,
        traceparent=envelope.traceparent,
    )


def _released_row(
    topic: str,
    citizen_ref: str,
    certificate_id: str,
    document: str,
    test_patient: bool,
    at: str,
    *,
    generation: int,
    correlation_id: str,
    traceparent: str | None,
) -> tuple[object, ...]:
    """The outbox row of a certificate.released: `document` is the certificate's `model_dump_json()`."""
    payload = {
        "citizen_ref": citizen_ref,
        "certificate": orjson.Fragment(document),
        "test_patient": test_patient,
        "released_at": at,
        "consent_generation": generation,
    }
    return event_row(
        topic,
        citizen_ref,
        CertificateReleased,
        payload,
        at=at,
        correlation_id=correlation_id,
        subject=certificate_id,
        traceparent=traceparent,
    )


async def certificate_arrived(gate: Gate, conn: Connection, data: CertificateIssued, envelope: Envelope) -> None:
    """One arrival: a batch of one."""
    consents = await repo.lock_citizens(conn, [data.citizen_ref])
    await _arrivals(gate, conn, [(envelope, data)], consents)


async def certificate_revoked(gate: Gate, conn: Connection, data: CertificateRevoked, envelope: Envelope) -> None:
    citizen = await repo.lock_citizen(conn, data.citizen_ref)
    decision = decide_revocation(await repo.find_certificate(conn, data.certificate_id))
    if decision is Revocation.REMEMBER:
        await repo.insert_certificate(
            conn,
            certificate_id=data.certificate_id,
            citizen_ref=data.citizen_ref,
            certificate_type=data.certificate_type,
            test_patient=False,
            document=None,
            status=CertificateStatus.REVOKED,
            at=gate.clock(),
        )
    elif decision in (Revocation.FORWARD, Revocation.DROP_HELD):
        await repo.revoke(conn, data.certificate_id)
    if decision is Revocation.FORWARD:
        await gate.emit(
            conn,
            CONSENT_RELEASED.name,
            data.model_copy(update={"consent_generation": citizen.generation}),
            citizen_ref=data.citizen_ref,
            correlation_id=envelope.correlationid,
            subject=data.certificate_id,
            traceparent=envelope.traceparent,
        )
    log.info(
        "consent.certificate.revoked",
        certificate_id=data.certificate_id,
        citizen_ref=data.citizen_ref,
        decision=decision.value,
    )


async def give_consent(
    gate: Gate, citizen_ref: str, *, text_version: str, channel: str, correlation_id: str
) -> tuple[GiveOutcome, int]:
    """Record consent and release every held certificate of the citizen in issue order; returns how many."""
    async with gate.pool.acquire() as conn, conn.transaction():
        citizen = await repo.lock_citizen(conn, citizen_ref)
        outcome = decide_give(citizen.consent, text_version, gate.settings.current_text_version)
        if outcome is GiveOutcome.ALREADY_GIVEN:
            return outcome, 0
        now = gate.clock()
        generation = await repo.record_consent(conn, citizen_ref, Consent.GIVEN, text_version, channel, now)
        await gate.emit(
            conn,
            CONSENT_EVENTS.name,
            ConsentGiven(
                citizen_ref=citizen_ref,
                text_version=text_version,
                channel=channel,
                at=now,
                consent_generation=generation,
            ),
            citizen_ref=citizen_ref,
            correlation_id=correlation_id,
        )
        held = await repo.held_certificates(conn, citizen_ref)
        topic = gate.settings.topic(CONSENT_RELEASED.name)
        at = json_time(now)
        releases = [
            _released_row(
                topic,
                citizen_ref,
                certificate.id,
                # Validated and dumped again: a document stored by an older version comes out in today's form.
                CERTIFICATE_ADAPTER.validate_json(certificate.document).model_dump_json(),
                certificate.test_patient,
                at,
                generation=generation,
                correlation_id=correlation_id,
                # The release continues the certificate's own trace; the consent's is on consent.given.
                traceparent=continue_trace(certificate.traceparent, "consent release held")
                if certificate.traceparent
                else None,
            )
            for certificate in held
        ]
        await add_many_to_outbox(conn, releases)  # in issue order: the outbox keeps insertion order
        await repo.mark_released(conn, [c.id for c in held])
    gate.on_commit()
    RELEASED.inc(len(held))
    log.info("consent.given", citizen_ref=citizen_ref, text_version=text_version, released=len(held))
    return outcome, len(held)


async def withdraw_consent(gate: Gate, citizen_ref: str, *, channel: str, correlation_id: str) -> WithdrawOutcome:
    """Record the withdrawal, tell every service to remove the citizen's data, and hold their certificates."""
    async with gate.pool.acquire() as conn, conn.transaction():
        citizen = await repo.lock_citizen(conn, citizen_ref)
        outcome = decide_withdraw(citizen.consent)
        if outcome is WithdrawOutcome.NOT_GIVEN:
            return outcome
        now = gate.clock()
        text_version = citizen.text_version or gate.settings.current_text_version
        generation = await repo.record_consent(conn, citizen_ref, Consent.WITHDRAWN, text_version, channel, now)
        await gate.emit(
            conn,
            CONSENT_EVENTS.name,
            ConsentWithdrawn(
                citizen_ref=citizen_ref,
                text_version=text_version,
                channel=channel,
                at=now,
                consent_generation=generation,
            ),
            citizen_ref=citizen_ref,
            correlation_id=correlation_id,
        )
        await gate.emit(
            conn,
            CONSENT_RELEASED.name,
            CitizenDataWithdrawn(citizen_ref=citizen_ref, at=now, consent_generation=generation),
            citizen_ref=citizen_ref,
            correlation_id=correlation_id,
        )
        held = await repo.hold_released(conn, citizen_ref, now)
    gate.on_commit()
    log.info("consent.withdrawn", citizen_ref=citizen_ref, held_again=held)
    return outcome
