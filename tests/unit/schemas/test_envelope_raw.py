"""Splicing pre-serialised payload fields into an envelope gives the same bytes' meaning as serialising them."""

from datetime import UTC, datetime

import orjson

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateReleased


def test_raw_certificate_json_is_spliced_to_the_same_event() -> None:
    for seed in range(20):
        cert = CERTIFICATE_ADAPTER.validate_python(CertificateFactory(seed=seed).certificate())
        now = datetime.now(UTC)
        envelope = new_envelope(
            CertificateReleased(citizen_ref="a" * 64, certificate=cert, test_patient=False, released_at=now),
            source="test",
            time=now,
            correlation_id="c",
        )
        spliced = encode(envelope, raw={"certificate": cert.model_dump_json()})
        assert orjson.loads(spliced) == orjson.loads(encode(envelope))
        assert decode(spliced) == envelope
