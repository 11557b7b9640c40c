"""Consent's one encoder (`encode_fresh`, built without the models) gives the very bytes and headers the models give,
and the CloudEvents reference SDK reads them."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, decode, encode, encode_fresh, json_time, new_envelope
from schemas.events import (
    CertificateIssued,
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    ConsentGiven,
    ConsentWithdrawn,
    EventData,
    dataschema_uri,
)
from services.consent.handlers import SOURCE, _release, _released_row, event_row
from services.kit.outbox import event_headers, outbox_values

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("traceparent", [TRACEPARENT, None])
def test_a_release_row_is_byte_for_byte_what_the_models_give(seed: int, traceparent: str | None) -> None:
    factory = CertificateFactory(seed=seed)
    certificate = CERTIFICATE_ADAPTER.validate_python(factory.certificate())
    zone = [UTC, timezone(timedelta(hours=2))][seed % 2]
    now = datetime(2026, 11, 26, 2, 15, 30, 123456 * (seed % 2), tzinfo=zone)
    issued = Envelope(
        id=uuid4(),
        type="certificate.issued",
        source="minaintyg/intake",
        time=now,
        subject=certificate.id,
        dataschema=dataschema_uri(CertificateIssued),
        correlationid=f"corr-{seed}",
        traceparent=traceparent,
        data=CertificateIssued(
            citizen_ref=f"{seed:064x}", certificate=certificate, test_patient=seed % 3 == 0, received_at=now
        ),
    )
    assert isinstance(issued.data, CertificateIssued)
    document = certificate.model_dump_json()

    row = _release("t.consent.released.v1", issued, issued.data, document, json_time(now), 2 * seed + 1)

    event_id = row[0]
    assert isinstance(event_id, UUID)
    expected = Envelope(
        id=event_id,
        type="certificate.released",
        source=SOURCE,
        time=now,
        subject=certificate.id,
        dataschema=dataschema_uri(CertificateReleased),
        correlationid=issued.correlationid,
        traceparent=traceparent,
        data=CertificateReleased(
            citizen_ref=issued.data.citizen_ref,
            certificate=certificate,
            test_patient=issued.data.test_patient,
            released_at=now,
            consent_generation=2 * seed + 1,
        ),
    )
    assert row == outbox_values("t.consent.released.v1", issued.data.citizen_ref, expected)
    assert row[3] == encode(expected)  # the same bytes, key order and time format included
    assert decode(row[3]) == expected
    assert row[4] == [list(h) for h in event_headers(expected)]


def test_encode_fresh_keeps_a_spliced_fragment_and_the_envelope_defaults() -> None:
    event_id = uuid4()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    value = encode_fresh(
        CertificateReleased,
        {
            "citizen_ref": "a" * 64,
            "certificate": orjson.Fragment(b'{"x":1}'),
            "test_patient": False,
            "released_at": json_time(now),
        },
        event_id=event_id,
        source="s",
        time=json_time(now),
        correlation_id="c",
    )
    document = orjson.loads(value)
    assert document["data"]["certificate"] == {"x": 1}
    assert document["time"] == "2026-01-01T00:00:00Z"
    assert "subject" not in document  # absent, not null: CloudEvents' JSON format has no null attribute
    assert "traceparent" not in document
    assert document["specversion"] == "1.0"
    assert document["id"] == str(event_id)


AT = datetime(2026, 11, 26, 2, 15, 30, 654321, tzinfo=UTC)
REF = "cd" * 32
CONSENT_EMITS: list[EventData] = [
    ConsentGiven(citizen_ref=REF, text_version="2025-1", channel="web", at=AT),
    ConsentWithdrawn(citizen_ref=REF, text_version="2025-1", channel="api", at=AT),
    CitizenDataWithdrawn(citizen_ref=REF, at=AT),
    CertificateRevoked(citizen_ref=REF, certificate_id="c-1", certificate_type="LISJP", revoked_at=AT),
    CertificateReleased(
        citizen_ref=REF,
        certificate=CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=3).certificate()),
        test_patient=True,
        released_at=AT,
    ),
]


@pytest.mark.parametrize("data", CONSENT_EMITS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("traceparent", [TRACEPARENT, None])
def test_every_event_consent_emits_is_the_row_the_models_give(data: EventData, traceparent: str | None) -> None:
    row = event_row(
        "t.topic",
        REF,
        type(data),
        orjson.Fragment(data.model_dump_json()),
        at=json_time(AT),
        correlation_id="corr",
        subject="s-1",
        traceparent=traceparent,
    )
    event_id = row[0]
    assert isinstance(event_id, UUID)
    expected = new_envelope(data, source=SOURCE, time=AT, correlation_id="corr", subject="s-1", traceparent=traceparent)
    expected = expected.model_copy(update={"id": event_id})
    assert row == outbox_values("t.topic", REF, expected)
    value = row[3]
    assert isinstance(value, bytes)
    assert decode(value) == expected


def test_a_held_release_is_the_row_the_models_give() -> None:
    certificate = CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=4).certificate())
    row = _released_row(
        "t.released",
        REF,
        certificate.id,
        certificate.model_dump_json(),
        False,
        json_time(AT),
        generation=3,
        correlation_id="corr",
        traceparent=None,
    )
    assert isinstance(row[0], UUID)
    data = CertificateReleased(
        citizen_ref=REF, certificate=certificate, test_patient=False, released_at=AT, consent_generation=3
    )
    expected = new_envelope(data, source=SOURCE, time=AT, correlation_id="corr", subject=certificate.id)
    assert row == outbox_values("t.released", REF, expected.model_copy(update={"id": row[0]}))


@pytest.mark.parametrize("data", CONSENT_EMITS, ids=lambda d: type(d).__name__)
def test_the_cloudevents_sdk_reads_what_encode_fresh_builds(data: EventData) -> None:
    row = event_row(
        "t.topic",
        REF,
        type(data),
        orjson.Fragment(data.model_dump_json()),
        at=json_time(AT),
        correlation_id="corr",
        subject="s-1",
        traceparent=TRACEPARENT,
    )
    value, headers = row[3], row[4]
    assert isinstance(value, bytes)
    assert isinstance(headers, list)
    message = KafkaMessage(headers={name: v.encode() for name, v in headers}, key=REF.encode(), value=value)
    event = from_kafka(message, JSONFormat())
    assert event.get_id() == str(row[0])
    assert event.get_type() == data.event_type
    assert event.get_source() == SOURCE
    assert event.get_subject() == "s-1"
    assert event.get_dataschema() == dataschema_uri(type(data))
    assert event.get_time() == AT
    assert event.get_extension("correlationid") == "corr"
    assert event.get_extension("traceparent") == TRACEPARENT
    assert event.get_data() == orjson.loads(data.model_dump_json())
