"""CloudEvents extension attributes (tracestate and others) are accepted and kept; the CloudEvents reference SDK reads
our Kafka messages (structured mode) as the events they are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, InvalidEvent, decode, encode, new_envelope
from schemas.events import CertificateIssued, CertificateReleased, CertificateRevoked, ConsentGiven, EventData
from services.kit.outbox import event_headers
from services.stats.released import decode_released

AT = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
REF = "ab" * 32
CERTIFICATE = CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=1).certificate("LISJP", now=AT))
SAMPLES: dict[str, EventData] = {
    "certificate.issued": CertificateIssued(
        citizen_ref=REF, certificate=CERTIFICATE, test_patient=False, received_at=AT
    ),
    "certificate.released": CertificateReleased(
        citizen_ref=REF, certificate=CERTIFICATE, test_patient=False, released_at=AT
    ),
    "certificate.revoked": CertificateRevoked(
        citizen_ref=REF, certificate_id="c-1", certificate_type="LISJP", revoked_at=AT
    ),
    "consent.given": ConsentGiven(citizen_ref=REF, text_version="1", channel="web", at=AT),
}


def envelope_of(data: EventData) -> Envelope:
    return new_envelope(data, source="test", time=AT, correlation_id="corr-1", subject="s-1")


EXTENSIONS: dict[str, Any] = {
    "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    "partitionkey": "k-1",
    "sequence": 42,
    "sampled": True,
    "comexampleextension1": "value",
}


def with_extensions(event_type: str, **extensions: Any) -> bytes:
    document: dict[str, Any] = orjson.loads(encode(envelope_of(SAMPLES[event_type])))
    document.update(extensions)
    return orjson.dumps(document)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_an_event_with_tracestate_and_other_extensions_is_accepted_and_kept(event_type: str) -> None:
    raw = with_extensions(event_type, **EXTENSIONS)
    envelope = decode(raw)
    assert envelope.extensions == EXTENSIONS
    assert envelope.data == SAMPLES[event_type]
    assert orjson.loads(encode(envelope)) == orjson.loads(raw)  # re-encoded, the extensions stay
    assert decode(encode(envelope)) == envelope


def test_the_careful_path_accepts_extensions_too() -> None:
    # A peeked type that is wrong sends the bytes down the careful path (orjson, then the models).
    raw = with_extensions("consent.given", tracestate="a=b").replace(b'"type":', b'"type" :', 1)
    assert decode(raw).extensions == {"tracestate": "a=b"}


def test_statistics_fast_decoder_takes_an_extended_release_through_the_full_model() -> None:
    raw = with_extensions("certificate.released", tracestate="a=b")
    envelope = decode_released(raw)
    assert envelope.extensions == {"tracestate": "a=b"}
    assert envelope == decode(raw)


@pytest.mark.parametrize(
    "extensions",
    [
        {"TraceState": "a=b"},  # upper case
        {"trace_state": "a=b"},  # not a letter or digit
        {"x" * 65: "a"},  # too long a name
        {"nested": {"a": 1}},  # not a CloudEvents type
        {"listed": [1]},
        {"ratio": 0.5},  # CloudEvents integers are integers
        {"huge": 2**40},  # ... of 32 bits
        {"long": "x" * 5000},
    ],
)
def test_a_malformed_extension_is_refused(extensions: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="extension attribute"):
        decode(with_extensions("consent.given", **extensions))


def test_absent_optional_attributes_are_left_out_not_null() -> None:
    document = orjson.loads(encode(envelope_of(SAMPLES["consent.given"]).model_copy(update={"subject": None})))
    assert "subject" not in document
    assert "traceparent" not in document


def _as_kafka_message(raw: bytes, headers: list[tuple[str, str]], key: bytes) -> KafkaMessage:
    return KafkaMessage(headers={name: value.encode() for name, value in headers}, key=key, value=raw)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_the_cloudevents_sdk_reads_our_message_as_structured_mode(event_type: str) -> None:
    envelope = envelope_of(SAMPLES[event_type]).model_copy(
        update={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    headers = event_headers(envelope)
    assert not [name for name, _ in headers if name.startswith("ce_")]
    event = from_kafka(_as_kafka_message(encode(envelope), headers, b"key"), JSONFormat())
    assert event.get_id() == str(envelope.id)
    assert event.get_type() == envelope.type
    assert event.get_source() == envelope.source
    assert event.get_subject() == envelope.subject
    assert event.get_dataschema() == envelope.dataschema
    assert event.get_time() == envelope.time
    assert event.get_extension("correlationid") == envelope.correlationid
    assert event.get_extension("traceparent") == envelope.traceparent
    assert event.get_data() == orjson.loads(encode(envelope))["data"]


def test_the_cloudevents_sdk_reads_an_event_with_extensions() -> None:
    raw = with_extensions("consent.given", **EXTENSIONS)
    envelope = decode(raw)
    # The binding reads the message key as the partitioning extension's `partitionkey`: the same value here.
    event = from_kafka(_as_kafka_message(raw, event_headers(envelope), b"k-1"), JSONFormat())
    assert {name: event.get_extension(name) for name in EXTENSIONS} == EXTENSIONS
