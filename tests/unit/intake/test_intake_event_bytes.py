"""Intake serialises a certificate once and splices that JSON into its `certificate.issued` event: the outbox row's
value is byte for byte what serialising the whole event gives, for certificates of both types from both entry points'
generator, with and without the optional parts."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import decode, new_envelope
from schemas.events import CertificateIssued
from services.kit.outbox import outbox_values

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(30))
def test_the_spliced_event_is_the_serialised_event(seed: int) -> None:
    factory = CertificateFactory(seed=seed)
    for kind in ("LISJP", "AG7804"):
        cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate(kind))
        event = CertificateIssued(citizen_ref="a" * 64, certificate=cert, test_patient=False, received_at=NOW)
        envelope = new_envelope(
            event, source="minaintyg/intake", time=NOW, correlation_id="c", subject=cert.id, traceparent=None
        )
        document_json = orjson.dumps(cert.model_dump(mode="json"))
        spliced = outbox_values("t", "k", envelope, raw={"certificate": document_json})
        whole = outbox_values("t", "k", envelope)
        assert spliced == whole
        assert decode(spliced[3]) == envelope  # type: ignore[arg-type]
