"""The CloudEvents envelope: encode/decode of every event type, refusals, and upcasting (schemas.envelope)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import UPCASTERS, Envelope, InvalidEvent, decode, encode, new_envelope
from schemas.events import (
    EVENT_TYPES,
    CertificateIssued,
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    ConsentGiven,
    ConsentWithdrawn,
    DispatchFailed,
    DispatchRequested,
    DispatchSucceeded,
    EventData,
    StatsReportPublished,
    dataschema_uri,
)

AT = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
REF = "ab" * 32
KEY = UUID("8d1b7c1e-2f4a-4b6c-9d8e-0f1a2b3c4d5e")
CERTIFICATE = CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=1).certificate("LISJP", now=AT))

SAMPLES: dict[str, EventData] = {
    "certificate.issued": CertificateIssued(
        citizen_ref=REF, certificate=CERTIFICATE, test_patient=False, received_at=AT
    ),
    "certificate.revoked": CertificateRevoked(
        citizen_ref=REF, certificate_id="c-1", certificate_type="LISJP", revoked_at=AT
    ),
    "consent.given": ConsentGiven(citizen_ref=REF, text_version="1", channel="web", at=AT),
    "consent.withdrawn": ConsentWithdrawn(citizen_ref=REF, text_version="1", channel="web", at=AT),
    "certificate.released": CertificateReleased(
        citizen_ref=REF, certificate=CERTIFICATE, test_patient=True, released_at=AT
    ),
    "citizen.data_withdrawn": CitizenDataWithdrawn(citizen_ref=REF, at=AT),
    "dispatch.requested": DispatchRequested(
        idempotency_key=KEY, certificate_id="c-1", recipient_id="FKASSA", citizen_ref=REF, requested_at=AT
    ),
    "dispatch.succeeded": DispatchSucceeded(
        idempotency_key=KEY,
        certificate_id="c-1",
        recipient_id="FKASSA",
        citizen_ref=REF,
        delivered_at=AT,
        recipient_reference="FK-123",
    ),
    "dispatch.failed": DispatchFailed(
        idempotency_key=KEY,
        certificate_id="c-1",
        recipient_id="FKASSA",
        citizen_ref=REF,
        failed_at=AT,
        reason_code="REVOKED",
        reason="Intyget är återkallat.",
    ),
    "stats.report_published": StatsReportPublished(
        report="sjukfall_per_manad",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        computed_at=AT,
        columns=["month", "count", "share", "suppressed", "note"],
        rows=[["2026-01", 12, 0.5, False, None], ["2026-02", 3, 0.25, True, "x"]],
        suppressed=[[1, 1]],
    ),
}


def envelope_of(data: EventData) -> Envelope:
    return new_envelope(data, source="test", time=AT, correlation_id="corr-1", subject="s-1", traceparent=None)


def document(event_type: str = "consent.given") -> dict[str, Any]:
    """The JSON object of a valid envelope, to break in one way."""
    loaded: dict[str, Any] = orjson.loads(encode(envelope_of(SAMPLES[event_type])))
    return loaded


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)
    assert all(type(SAMPLES[name]) is model for name, model in EVENT_TYPES.items())


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_round_trip(event_type: str) -> None:
    data = SAMPLES[event_type]
    envelope = envelope_of(data)

    decoded = decode(encode(envelope))

    assert decoded == envelope
    assert type(decoded.data) is EVENT_TYPES[event_type]
    assert decoded.data == data
    assert decoded.type == event_type
    assert decoded.dataschema == dataschema_uri(type(data)) == f"urn:minaintyg:event:{event_type}:v1"


def test_new_envelopes_get_fresh_ids() -> None:
    data = SAMPLES["consent.given"]

    assert envelope_of(data).id != envelope_of(data).id


def test_encoded_form_is_structured_cloudevents_json() -> None:
    raw = document()

    assert raw["specversion"] == "1.0"
    assert raw["datacontenttype"] == "application/json"
    assert raw["type"] == "consent.given"
    assert raw["correlationid"] == "corr-1"
    assert raw["data"]["citizen_ref"] == REF


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe"])
def test_non_json_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode(raw)


@pytest.mark.parametrize("raw", [b"[]", b'"consent.given"', b"42", b"null"])
def test_non_object_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidEvent, match="not a JSON object"):
        decode(raw)


@pytest.mark.parametrize("event_type", ["consent.revoked", "", None, 3])
def test_unknown_type_is_refused(event_type: object) -> None:
    raw = document()
    raw["type"] = event_type

    with pytest.raises(InvalidEvent, match="unknown event type"):
        decode(orjson.dumps(raw))


def test_missing_type_is_refused() -> None:
    raw = document()
    del raw["type"]

    with pytest.raises(InvalidEvent, match="unknown event type"):
        decode(orjson.dumps(raw))


@pytest.mark.parametrize("dataschema", [None, "urn:minaintyg:event:consent.given", 1])
def test_dataschema_without_major_version_is_refused(dataschema: object) -> None:
    raw = document()
    raw["dataschema"] = dataschema

    with pytest.raises(InvalidEvent, match="dataschema"):
        decode(orjson.dumps(raw))


def test_missing_dataschema_is_refused() -> None:
    raw = document()
    del raw["dataschema"]

    with pytest.raises(InvalidEvent, match="dataschema"):
        decode(orjson.dumps(raw))


def test_non_numeric_major_version_is_refused() -> None:
    raw = document()
    raw["dataschema"] = "urn:minaintyg:event:consent.given:vX"

    with pytest.raises(InvalidEvent, match="bad dataschema"):
        decode(orjson.dumps(raw))


def test_newer_major_version_without_upcaster_is_refused() -> None:
    raw = document()
    raw["dataschema"] = "urn:minaintyg:event:consent.given:v2"

    with pytest.raises(InvalidEvent, match=r"no upcaster for consent\.given v2"):
        decode(orjson.dumps(raw))


PERSONNUMMER = "19121212-1212"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["data"].update(citizen_ref=PERSONNUMMER), "citizen_ref"),
        (lambda d: d["data"].update(channel=[PERSONNUMMER]), "channel"),
        (lambda d: d["data"].update(text_version=PERSONNUMMER * 3), "text_version"),
        (lambda d: d["data"].pop("at"), "at"),
        (lambda d: d.update(correlationid=""), "correlationid"),
        (lambda d: d.update(time=PERSONNUMMER), "time"),
        (lambda d: d.update(id=PERSONNUMMER), "id"),
    ],
)
def test_invalid_payload_names_the_field_but_not_the_value(change: Any, field: str) -> None:
    raw = document()
    change(raw)

    with pytest.raises(InvalidEvent) as caught:
        decode(orjson.dumps(raw))

    message = str(caught.value)
    assert message.startswith("invalid consent.given: ")
    assert field in message
    assert PERSONNUMMER not in message
    assert PERSONNUMMER.replace("-", "") not in message


@pytest.mark.parametrize(
    "path",
    [
        ("care_unit", "county"),
        ("content", "occupations"),
        ("patient", "address", "postal_code"),
    ],
)
def test_invalid_certificate_inside_an_event_does_not_echo_the_value(path: tuple[str, ...]) -> None:
    raw = document("certificate.issued")
    target = raw["data"]["certificate"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = [PERSONNUMMER] if path[-1] == "occupations" else PERSONNUMMER

    with pytest.raises(InvalidEvent) as caught:
        decode(orjson.dumps(raw))

    assert path[-1] in str(caught.value)
    assert PERSONNUMMER not in str(caught.value)


def test_invalid_certificate_type_does_not_echo_the_value() -> None:
    raw = document("certificate.issued")
    raw["data"]["certificate"]["type"] = PERSONNUMMER

    with pytest.raises(InvalidEvent) as caught:
        decode(orjson.dumps(raw))

    assert PERSONNUMMER not in str(caught.value)


def test_upcaster_turns_an_old_major_version_into_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def rename_medium(data: dict[str, Any]) -> dict[str, Any]:
        upgraded = {k: v for k, v in data.items() if k != "medium"}
        return {**upgraded, "channel": data["medium"]}

    monkeypatch.setitem(UPCASTERS, ("consent.given", 0), rename_medium)
    raw = document()
    raw["dataschema"] = "urn:minaintyg:event:consent.given:v0"
    raw["data"]["medium"] = raw["data"].pop("channel")

    decoded = decode(orjson.dumps(raw))

    assert decoded.data == SAMPLES["consent.given"]
    assert decoded.dataschema == "urn:minaintyg:event:consent.given:v1"


def test_upcaster_output_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("consent.given", 0), lambda data: data)
    raw = document()
    raw["dataschema"] = "urn:minaintyg:event:consent.given:v0"
    raw["data"]["medium"] = raw["data"].pop("channel")

    with pytest.raises(InvalidEvent, match=r"invalid consent\.given"):
        decode(orjson.dumps(raw))


def test_old_version_without_object_data_is_refused_even_with_an_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("consent.given", 0), lambda data: data)
    raw = document()
    raw["dataschema"] = "urn:minaintyg:event:consent.given:v0"
    raw["data"] = ["not", "an", "object"]

    with pytest.raises(InvalidEvent, match="no upcaster"):
        decode(orjson.dumps(raw))
