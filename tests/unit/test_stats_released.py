"""Statistics reads released events through a model of only the fields it uses: same facts as the full model."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import InvalidEvent, decode, encode, new_envelope
from schemas.events import CertificateReleased, CertificateRevoked
from services.stats.domain import fact_of
from services.stats.released import ReleasedForStats, decode_released

REF = "a" * 64


def released_bytes(body: dict[str, object]) -> bytes:
    data = CertificateReleased(citizen_ref=REF, certificate=CERTIFICATE_ADAPTER.validate_python(body),
                               test_patient=False, released_at=datetime.now(UTC))  # fmt: skip
    return encode(new_envelope(data, source="test", time=datetime.now(UTC), correlation_id="t"))


def test_the_facts_are_those_of_the_full_model() -> None:
    factory = CertificateFactory(seed=3)
    for _ in range(200):
        raw = released_bytes(factory.certificate())
        slim, full = decode_released(raw), decode(raw)
        assert isinstance(slim.data, ReleasedForStats)
        assert isinstance(full.data, CertificateReleased)
        assert slim.id == full.id
        assert fact_of(slim.data.certificate, "k") == fact_of(full.data.certificate, "k")


def test_other_events_and_invalid_ones_decode_as_usual() -> None:
    revoked = CertificateRevoked(citizen_ref=REF, certificate_id="c1", certificate_type="LISJP",
                                 revoked_at=datetime.now(UTC))  # fmt: skip
    raw = encode(new_envelope(revoked, source="test", time=datetime.now(UTC), correlation_id="t"))
    assert isinstance(decode_released(raw).data, CertificateRevoked)
    document = orjson.loads(released_bytes(CertificateFactory(seed=4).certificate()))
    document["data"]["certificate"]["care_unit"]["county"] = "99"
    with pytest.raises(InvalidEvent, match="county"):
        decode_released(orjson.dumps(document))
