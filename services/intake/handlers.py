"""Intake's use cases: receive a certificate, revoke one. Each is one transaction with its outbox event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import structlog

from schemas.envelope import new_envelope
from schemas.events import CertificateIssued, CertificateRevoked
from schemas.riv.mapping import from_certificate
from schemas.riv.rules import check as published_rules
from schemas.topics import INTAKE_CERTIFICATES
from services.intake import repo
from services.intake.domain import (
    AcceptedCertificate,
    InvalidCertificate,
    Problem,
    ReceiveOutcome,
    RevokeOutcome,
    decide_redelivery,
    decide_revoke,
    validate,
)
from services.intake.settings import IntakeSettings
from services.kit.citizen import citizen_ref
from services.kit.db import Pool
from services.kit.outbox import add_to_outbox, outbox_values
from services.kit.ratelimit import RateLimit
from services.kit.swedish import swedish_date

log = structlog.get_logger(__name__)

SOURCE = "minaintyg/intake"
Clock = Callable[[], datetime]


class UnitCounties:
    """The county of each connected care unit as last read from `care_units`: a RIV-TA certificate names its unit
    by HSA-id only, and the event carries the unit's county. Remembered, never trusted: a certificate is stored only
    while its unit is connected with the county it was built with (`repo.insert_certificate_with_event`), so after
    a unit is disconnected or moves county the delivery looks it up again. At most `max_units` (the oldest
    remembered is forgotten first)."""

    def __init__(self, max_units: int = 50_000) -> None:
        self._counties: dict[str, str] = {}
        self._max_units = max_units

    def get(self, hsa_id: str) -> str | None:
        return self._counties.get(hsa_id)

    def remember(self, hsa_id: str, county: str) -> None:
        if hsa_id not in self._counties and len(self._counties) >= self._max_units:
            del self._counties[next(iter(self._counties))]
        self._counties[hsa_id] = county

    def forget(self, hsa_id: str) -> None:
        self._counties.pop(hsa_id, None)

    def __len__(self) -> int:
        return len(self._counties)


@dataclass(frozen=True)
class Intake:
    """What the use cases need, wired once by `bootstrap.py`."""

    settings: IntakeSettings
    pool: Pool
    clock: Clock
    on_commit: Callable[[], None]
    deliveries: RateLimit  # per platform (INTAKE_RATE_LIMIT)
    unit_counties: UnitCounties = field(default_factory=UnitCounties)


async def receive_certificate(
    intake: Intake,
    cert: AcceptedCertificate,
    *,
    original: str,
    platform: str,
    correlation_id: str,
    traceparent: str | None = None,
    rules_checked: bool = False,
    unit_county: str | None = None,
) -> ReceiveOutcome:
    """Validate and store a certificate with its `certificate.issued` event; idempotent on the id.

    Besides our own rules, the published rules of the certificate's type (schemas.riv.rules) hold whichever way
    it came: a JSON certificate is checked in its transport form, unless the caller has (`rules_checked`, the
    RIV-TA endpoint checks the message as received). With `unit_county` (the county the certificate was built with),
    it is stored only while that is its care unit's county; otherwise the outcome is NOT_CONNECTED."""
    now = intake.clock()
    document = cert.model_dump(mode="json")
    # Serialised once: checked for NUL characters, spliced into the event and stored as the normalised document.
    document_json = orjson.dumps(document)
    skew = timedelta(seconds=intake.settings.clock_skew_seconds)
    personnummer = validate(cert, now, skew, document, document_json)
    if not rules_checked:
        violations = published_rules(from_certificate(cert, sent_at=now), swedish_date(now))
        if violations:
            raise InvalidCertificate([Problem(f"rule {v.rule}", v.message) for v in violations])
    ref = citizen_ref(personnummer.digits, intake.settings.citizen_ref_key.get_secret_value())
    log_ = log.bind(certificate_id=cert.id, citizen_ref=ref, care_unit=cert.care_unit.hsa_id, type=cert.type)
    event = CertificateIssued(
        citizen_ref=ref, certificate=cert, test_patient=cert.patient.test_patient, received_at=now
    )
    envelope = new_envelope(
        event, source=SOURCE, time=now, correlation_id=correlation_id, subject=cert.id, traceparent=traceparent
    )
    async with intake.pool.acquire() as conn:
        # The usual case, a new certificate from a connected unit, is one atomic statement.
        inserted = await repo.insert_certificate_with_event(
            conn,
            certificate_id=cert.id,
            certificate_type=cert.type,
            personnummer=personnummer.digits,
            citizen_ref=ref,
            care_unit_hsa_id=cert.care_unit.hsa_id,
            signed_at=cert.signed_at,
            test_patient=cert.patient.test_patient,
            platform=platform,
            received_at=now,
            original=original,
            normalised=orjson.Fragment(document_json),
            outbox_row=outbox_values(
                intake.settings.topic(INTAKE_CERTIFICATES.name), ref, envelope, raw={"certificate": document_json}
            ),
            unit_county=unit_county,
        )
        if not inserted:
            # A concurrent delivery of the same id has committed by now: ON CONFLICT waited for it.
            stored = await repo.find_certificate(conn, cert.id)
    if not inserted:
        outcome = (
            decide_redelivery(stored.personnummer, personnummer.digits)
            if stored is not None
            else ReceiveOutcome.NOT_CONNECTED
        )
        log_.info("intake.certificate.not_stored", outcome=outcome.value)
        return outcome
    intake.on_commit()
    log_.info("intake.certificate.accepted", event_id=str(envelope.id), test_patient=cert.patient.test_patient)
    return ReceiveOutcome.ACCEPTED


async def revoke_certificate(
    intake: Intake,
    certificate_id: str,
    *,
    revoked_at: datetime | None,
    reason: str | None,
    platform: str,
    correlation_id: str,
    traceparent: str | None = None,
) -> RevokeOutcome:
    """Record a revocation with its `certificate.revoked` event; a second one changes nothing."""
    now = intake.clock()
    async with intake.pool.acquire() as conn, conn.transaction():
        stored = await repo.find_certificate(conn, certificate_id, for_update=True)
        outcome = decide_revoke(stored is not None, stored is not None and stored.revoked)
        if outcome is not RevokeOutcome.REVOKED or stored is None:
            log.info("intake.revocation.noop", certificate_id=certificate_id, outcome=outcome.value)
            return outcome
        when = revoked_at or now
        await repo.insert_revocation(
            conn,
            certificate_id=certificate_id,
            revoked_at=when,
            reason=reason,
            platform=platform,
            received_at=now,
        )
        event = CertificateRevoked(
            citizen_ref=stored.citizen_ref,
            certificate_id=certificate_id,
            certificate_type=stored.type,
            revoked_at=when,
        )
        envelope = new_envelope(
            event,
            source=SOURCE,
            time=now,
            correlation_id=correlation_id,
            subject=certificate_id,
            traceparent=traceparent,
        )
        await add_to_outbox(conn, intake.settings.topic(INTAKE_CERTIFICATES.name), stored.citizen_ref, envelope)
    intake.on_commit()
    log.info("intake.certificate.revoked", certificate_id=certificate_id, citizen_ref=stored.citizen_ref)
    return outcome
