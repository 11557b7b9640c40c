"""Every event in the topic table, as frozen payload models, and the registry that maps type names to them.

An event type is `noun.past_tense`; its major version is part of its data schema URI. A published event never
changes incompatibly: a new major version is a new class registered beside the old one, with an upcaster.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from schemas.certificate import Certificate, CertificateId

CitizenRef = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 of the personnummer")]
RecipientId = Annotated[str, Field(pattern=r"^[A-Z0-9_]{2,32}$")]
# The citizen's consent generation: consent counts each change of a citizen's consent (1 at the first consent, 2 at
# its withdrawal, 3 at the next consent, ...). An event about a citizen's data carries the generation it was made in,
# so a late or replayed one is recognisable: a release older than the citizen's last withdrawal is dropped. 0 means
# "made before generations were counted" (events published before this field existed).
ConsentGeneration = Annotated[
    int, Field(ge=0, description="The citizen's consent generation the event was made in (0: not known)")
]


class EventData(Frozen):
    """Payload of one event type."""

    event_type: ClassVar[str]
    major_version: ClassVar[int] = 1


class CertificateIssued(EventData):
    """A certificate was accepted by intake (topic intake.certificates.v1)."""

    event_type: ClassVar[str] = "certificate.issued"
    citizen_ref: CitizenRef
    certificate: Certificate
    test_patient: bool
    received_at: AwareDatetime


class CertificateRevoked(EventData):
    """The issuer revoked a certificate (intake.certificates.v1, forwarded on consent.released.v1)."""

    event_type: ClassVar[str] = "certificate.revoked"
    citizen_ref: CitizenRef
    certificate_id: CertificateId
    certificate_type: str
    revoked_at: AwareDatetime
    consent_generation: ConsentGeneration = 0


class ConsentGiven(EventData):
    event_type: ClassVar[str] = "consent.given"
    citizen_ref: CitizenRef
    text_version: Annotated[str, Field(min_length=1, max_length=32)]
    channel: Annotated[str, Field(min_length=1, max_length=32)]
    at: AwareDatetime
    consent_generation: ConsentGeneration = 0


class ConsentWithdrawn(EventData):
    event_type: ClassVar[str] = "consent.withdrawn"
    citizen_ref: CitizenRef
    text_version: Annotated[str, Field(min_length=1, max_length=32)]
    channel: Annotated[str, Field(min_length=1, max_length=32)]
    at: AwareDatetime
    consent_generation: ConsentGeneration = 0


class CertificateReleased(EventData):
    """A consenting citizen's certificate, for portal, dispatch and stats."""

    event_type: ClassVar[str] = "certificate.released"
    citizen_ref: CitizenRef
    certificate: Certificate
    test_patient: bool
    released_at: AwareDatetime
    consent_generation: ConsentGeneration = 0


class CitizenDataWithdrawn(EventData):
    """The citizen withdrew consent: every service removes that citizen's data."""

    event_type: ClassVar[str] = "citizen.data_withdrawn"
    citizen_ref: CitizenRef
    at: AwareDatetime
    consent_generation: ConsentGeneration = 0  # this withdrawal's: releases of an earlier generation are stale


class DispatchRequested(EventData):
    """The citizen asked to send a certificate to a recipient."""

    event_type: ClassVar[str] = "dispatch.requested"
    idempotency_key: UUID
    certificate_id: CertificateId
    recipient_id: RecipientId
    citizen_ref: CitizenRef
    requested_at: AwareDatetime


class DispatchSucceeded(EventData):
    event_type: ClassVar[str] = "dispatch.succeeded"
    idempotency_key: UUID
    certificate_id: CertificateId
    recipient_id: RecipientId
    citizen_ref: CitizenRef
    delivered_at: AwareDatetime
    recipient_reference: Annotated[str, Field(max_length=200)] | None = None


# Why a dispatch failed for good: part of the dispatch.failed contract, and the codes dispatch's rules decide.
FailureCode = Literal[
    "REVOKED",
    "TYPE_NOT_ACCEPTED",
    "TEST_PATIENT",
    "NO_CONSENT",
    "UNKNOWN_CERTIFICATE",
    "RECIPIENT_INACTIVE",
    "DEADLINE_EXCEEDED",
    "REJECTED_BY_RECIPIENT",
]


class DispatchFailed(EventData):
    event_type: ClassVar[str] = "dispatch.failed"
    idempotency_key: UUID
    certificate_id: CertificateId
    recipient_id: RecipientId
    citizen_ref: CitizenRef
    failed_at: AwareDatetime
    reason_code: FailureCode
    reason: Annotated[str, Field(max_length=500, description="Swedish text the portal can show")]


ReportCell = str | int | float | bool | None


class StatsReportPublished(EventData):
    """A snapshot of one statistics report for one period (compacted by report key)."""

    event_type: ClassVar[str] = "stats.report_published"
    report: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    period_start: date
    period_end: date
    computed_at: AwareDatetime
    columns: list[str]
    rows: list[list[ReportCell]]
    suppressed: list[list[int]] = Field(description="[row, column] of every suppressed cell")
    preliminary: bool = Field(False, description="The period is not closed: a later snapshot of the key replaces it")


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.event_type: cls
    for cls in (
        CertificateIssued,
        CertificateRevoked,
        ConsentGiven,
        ConsentWithdrawn,
        CertificateReleased,
        CitizenDataWithdrawn,
        DispatchRequested,
        DispatchSucceeded,
        DispatchFailed,
        StatsReportPublished,
    )
}


def dataschema_uri(cls: type[EventData]) -> str:
    """The CloudEvents `dataschema` of an event type, with its major version."""
    return f"urn:minaintyg:event:{cls.event_type}:v{cls.major_version}"
