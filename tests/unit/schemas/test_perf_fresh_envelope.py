"""The gate's releases built without the models are the very bytes and headers the models give."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, decode, encode, encode_fresh, json_time
from schemas.events import CertificateIssued, CertificateReleased, dataschema_uri
from services.consent.handlers import SOURCE, _release
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
        id=uuid4(), type="certificate.issued", source="minaintyg/intake", time=now, subject=certificate.id,
        dataschema=dataschema_uri(CertificateIssued), correlationid=f"corr-{seed}", traceparent=traceparent,
        data=CertificateIssued(citizen_ref=f"{seed:064x}", certificate=certificate, test_patient=seed % 3 == 0,
                               received_at=now),
    )  # fmt: skip
    assert isinstance(issued.data, CertificateIssued)
    document = certificate.model_dump_json()

    row = _release("t.consent.released.v1", issued, issued.data, document, json_time(now), 2 * seed + 1)

    event_id = row[0]
    assert isinstance(event_id, UUID)
    expected = Envelope(
        id=event_id, type="certificate.released", source=SOURCE, time=now, subject=certificate.id,
        dataschema=dataschema_uri(CertificateReleased), correlationid=issued.correlationid, traceparent=traceparent,
        data=CertificateReleased(citizen_ref=issued.data.citizen_ref, certificate=certificate,
                                 test_patient=issued.data.test_patient, released_at=now,
                                 consent_generation=2 * seed + 1),
    )  # fmt: skip
    assert row == outbox_values("t.consent.released.v1", issued.data.citizen_ref, expected)
    assert row[3] == encode(expected)  # the same bytes, key order and time format included
    assert decode(row[3]) == expected
    assert row[4] == [list(h) for h in event_headers(expected)]


def test_encode_fresh_keeps_a_spliced_fragment_and_the_envelope_defaults() -> None:
    event_id = uuid4()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    value = encode_fresh(
        CertificateReleased,
        {"citizen_ref": "a" * 64, "certificate": orjson.Fragment(b'{"x":1}'), "test_patient": False,
         "released_at": json_time(now)},
        event_id=event_id, source="s", time=json_time(now), correlation_id="c",
    )  # fmt: skip
    document = orjson.loads(value)
    assert document["data"]["certificate"] == {"x": 1}
    assert document["time"] == "2026-01-01T00:00:00Z"
    assert "subject" not in document  # absent, not null: CloudEvents' JSON format has no null attribute
    assert "traceparent" not in document
    assert document["specversion"] == "1.0"
    assert document["id"] == str(event_id)
