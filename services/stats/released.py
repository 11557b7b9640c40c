"""Reading `certificate.released` for statistics: only the fields statistics uses are validated.

A released event carries the whole certificate; validating all of it is most of the ingest's CPU time. Statistics
reads a few fields, so it validates those (extra fields ignored) and falls back to the full model, which names the
problem precisely, when they do not validate. Every other event type is decoded in full.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, ConfigDict, Field, ValidationError, create_model

from schemas.base import Frozen
from schemas.certificate import CertificateId, County
from schemas.envelope import Envelope, decode
from schemas.events import CertificateReleased, CitizenRef, EventData, dataschema_uri


class _Part(Frozen):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Patient(_Part):
    personnummer: Annotated[str, Field(min_length=10, max_length=13)]
    test_patient: bool = False


class _Provider(_Part):
    hsa_id: Annotated[str, Field(min_length=3, max_length=31)]


class _Unit(_Part):
    county: County
    care_provider: _Provider


class _Diagnosis(_Part):
    code: Annotated[str, Field(min_length=3, max_length=6)]


class _Period(_Part):
    degree: Literal[25, 50, 75, 100]
    start: date
    end: date


class _Content(_Part):
    diagnoses: list[_Diagnosis] | None = None
    sick_leave_periods: list[_Period] | None = None


class StatsCertificate(_Part):
    """The fields of a certificate statistics reads."""

    id: CertificateId
    type: Annotated[str, Field(pattern=r"^[A-Z0-9_]{2,16}$")]
    signed_at: AwareDatetime
    patient: _Patient
    care_unit: _Unit
    content: _Content


class ReleasedForStats(EventData):
    """`certificate.released` as statistics reads it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    event_type: ClassVar[str] = CertificateReleased.event_type
    citizen_ref: CitizenRef
    certificate: StatsCertificate
    test_patient: bool


_ReleasedEnvelope: type[Envelope] = create_model(
    "ReleasedForStatsEnvelope",
    __base__=Envelope,
    type=(Literal[CertificateReleased.event_type], ...),  # type: ignore[arg-type]
    dataschema=(Literal[dataschema_uri(CertificateReleased)], ...),  # type: ignore[arg-type]
    data=(ReleasedForStats, ...),
)
_RELEASED = b'"type":"certificate.released"'


def decode_released(raw: bytes) -> Envelope:
    """Decode an event of consent.released.v1 for statistics; raises InvalidEvent like `schemas.envelope.decode`."""
    if _RELEASED in raw[:512]:
        try:
            return _ReleasedEnvelope.model_validate_json(raw)
        except ValidationError:
            pass
    return decode(raw)
