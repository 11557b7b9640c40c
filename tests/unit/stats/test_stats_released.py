"""Statistics reads released events through a model of only the fields it uses: same facts as the full model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope, InvalidEvent, decode, encode, new_envelope
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
        attributes = [name for name in Envelope.model_fields if name != "data"]
        assert [getattr(slim, name) for name in attributes] == [getattr(full, name) for name in attributes]
        assert slim.model_dump(exclude={"data"}) == full.model_dump(exclude={"data"})
        assert fact_of(slim.data.certificate, "k", REF) == fact_of(full.data.certificate, "k", REF)


def test_other_events_and_invalid_ones_decode_as_usual() -> None:
    revoked = CertificateRevoked(citizen_ref=REF, certificate_id="c1", certificate_type="LISJP",
                                 revoked_at=datetime.now(UTC))  # fmt: skip
    raw = encode(new_envelope(revoked, source="test", time=datetime.now(UTC), correlation_id="t"))
    assert isinstance(decode_released(raw).data, CertificateRevoked)
    document = orjson.loads(released_bytes(CertificateFactory(seed=4).certificate()))
    document["data"]["certificate"]["care_unit"]["county"] = "99"
    with pytest.raises(InvalidEvent, match="county"):
        decode_released(orjson.dumps(document))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # A CloudEvents extension is welcome (see test_envelope_extensions.py), a malformed one is not.
        (lambda d: d.update(Unexpected_Name="x"), "extension attribute"),
        (lambda d: d.update(unexpected={"nested": 1}), "extension attribute unexpected"),
        (lambda d: d["data"]["certificate"]["patient"].update(personnummer="1"), "personnummer"),
        (lambda d: d["data"]["certificate"].update(signed_at="2026-01-01T10:00:00"), "signed_at"),
        (lambda d: d["data"]["certificate"]["content"]["sick_leave_periods"][0].update(degree=30), "degree"),
        (lambda d: d["data"].update(citizen_ref="not-a-ref"), "citizen_ref"),
        (lambda d: d["data"].update(citizen_ref=d["data"]["citizen_ref"] + "\n"), "citizen_ref"),
        (lambda d: d["data"]["certificate"].update(type="LISJP\n"), "type"),
    ],
)
def test_what_the_fast_path_refuses_the_full_model_names(change: Callable[[dict[str, Any]], None], named: str) -> None:
    document = orjson.loads(released_bytes(CertificateFactory(seed=5).certificate()))
    change(document)
    with pytest.raises(InvalidEvent, match=named):
        decode_released(orjson.dumps(document))
