"""Reading `certificate.released` for statistics: only the fields statistics uses are decoded and validated.

A released event carries the whole certificate (about 2 kB of JSON, mostly free text statistics never reads), and
decoding it was the largest single cost of the ingest. Statistics reads a dozen fields, so a released event is
decoded by msgspec into structs of just those fields, with the contract's constraints on them (patterns, lengths,
enumerations, time zones); msgspec skips everything else without building it, at a third of the cost of pydantic's
narrow model and a fifth of the full one. An event this path refuses, and every other event type, is decoded by
the full model (`schemas.envelope.decode`), which accepts what the contract accepts and names precisely what is
wrong with the rest (`InvalidEvent`, to the dead-letter topic).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from schemas.certificate import County
from schemas.envelope import Envelope, decode
from schemas.events import CertificateReleased, dataschema_uri


class StatsPatient(msgspec.Struct, frozen=True):
    personnummer: Annotated[str, Meta(min_length=10, max_length=13)]
    test_patient: bool = False


class StatsProvider(msgspec.Struct, frozen=True):
    hsa_id: Annotated[str, Meta(min_length=3, max_length=31)]


class StatsUnit(msgspec.Struct, frozen=True):
    county: County
    care_provider: StatsProvider


class StatsDiagnosis(msgspec.Struct, frozen=True):
    code: Annotated[str, Meta(min_length=3, max_length=6)]


class StatsPeriod(msgspec.Struct, frozen=True):
    degree: Literal[25, 50, 75, 100]
    start: date
    end: date


class StatsContent(msgspec.Struct, frozen=True):
    diagnoses: list[StatsDiagnosis] | None = None
    sick_leave_periods: list[StatsPeriod] | None = None


class StatsRelation(msgspec.Struct, frozen=True):
    kind: Literal["REPLACES", "COMPLEMENTS", "EXTENDS"]
    certificate_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")]


class StatsCertificate(msgspec.Struct, frozen=True):
    """The fields of a certificate statistics reads. (Patterns end in \\Z: msgspec matches with Python's `re`, whose
    `$` also matches before a final newline, which the contract's patterns do not allow.)"""

    id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")]
    type: Annotated[str, Meta(pattern=r"^[A-Z0-9_]{2,16}\Z")]
    signed_at: Annotated[datetime, Meta(tz=True)]
    patient: StatsPatient
    care_unit: StatsUnit
    content: StatsContent
    relation: StatsRelation | None = None


class ReleasedForStats(msgspec.Struct, frozen=True):
    """`certificate.released` as statistics reads it (the `data` of the envelopes `decode_released` makes).

    Unknown fields are skipped here and in every part (the certificate has many that statistics never reads)."""

    citizen_ref: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
    certificate: StatsCertificate
    test_patient: bool
    consent_generation: Annotated[int, Meta(ge=0)] = 0


class _ReleasedEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The envelope's attributes as `schemas.envelope.Envelope` constrains them (no unknown attribute)."""

    id: UUID
    type: Literal["certificate.released"]
    source: Annotated[str, Meta(min_length=1, max_length=200)]
    time: Annotated[datetime, Meta(tz=True)]
    dataschema: Literal["urn:minaintyg:event:certificate.released:v1"]
    correlationid: Annotated[str, Meta(min_length=1, max_length=100)]
    data: ReleasedForStats
    specversion: Literal["1.0"] = "1.0"
    subject: Annotated[str, Meta(max_length=200)] | None = None
    traceparent: Annotated[str, Meta(max_length=55)] | None = None
    datacontenttype: Literal["application/json"] = "application/json"


if set(_ReleasedEnvelope.__struct_fields__) != set(Envelope.model_fields) or dataschema_uri(CertificateReleased) != (
    "urn:minaintyg:event:certificate.released:v1"
):
    raise RuntimeError("the envelope of certificate.released changed: update services/stats/released.py")

_DECODER = msgspec.json.Decoder(_ReleasedEnvelope)
_RELEASED = b'"type":"certificate.released"'
_FIELDS_SET = frozenset(_ReleasedEnvelope.__struct_fields__)
_new = object.__new__
_set = object.__setattr__


def _envelope(values: dict[str, Any]) -> Envelope:
    """An Envelope of already validated values, as `Envelope.model_construct` makes it (which costs as much as the
    whole msgspec decode: it walks every field's default). tests/unit/stats/test_stats_released.py holds the result to
    the envelope pydantic decodes from the same bytes."""
    envelope: Envelope = _new(Envelope)
    _set(envelope, "__dict__", values)
    _set(envelope, "__pydantic_fields_set__", set(_FIELDS_SET))
    _set(envelope, "__pydantic_extra__", None)
    _set(envelope, "__pydantic_private__", None)
    return envelope


def decode_released(raw: bytes) -> Envelope:
    """Decode an event of consent.released.v1 for statistics; raises InvalidEvent like `schemas.envelope.decode`.

    A released event's `data` is a `ReleasedForStats`; any other event (or a released one msgspec refuses) is
    decoded in full."""
    if _RELEASED in raw[:512]:
        try:
            fast = _DECODER.decode(raw)
        except msgspec.DecodeError:
            pass
        else:
            return _envelope(msgspec.structs.asdict(fast))
    return decode(raw)
