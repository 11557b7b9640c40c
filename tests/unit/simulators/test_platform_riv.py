"""The platform simulator's RIV-TA messages are what a real journal system sends: each one is valid against the
RegisterCertificate v3 schema and breaks none of the published rules of its type, for many generated
certificates of both types; a revocation is valid against RevokeCertificate v2."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deploy.simulators.platform import riv
from deploy.simulators.platform.generator import CertificateFactory
from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.mapping import utc_to_swedish_time
from schemas.riv.rules import check


@pytest.mark.parametrize("seed", range(40))
def test_every_generated_certificate_is_a_valid_register_certificate(seed: int) -> None:
    intyg = riv.to_intyg(CertificateFactory(seed=seed).certificate())
    message = riv.register_message(intyg)
    request = soap.open_envelope(xml.parse(message))
    assert request.logical_address == "MINAINTYG"
    xml.check(request.payload, "RegisterCertificateResponder_3.xsd")
    element = request.payload.find(f"{{{ns.REGISTER}}}intyg")
    assert element is not None
    again = xml.read_intyg(element)
    assert again == intyg
    today = utc_to_swedish_time(datetime.now(UTC)).date()
    assert check(intyg, today) == [], intyg.typ.code


def test_a_revocation_is_a_valid_revoke_certificate() -> None:
    intyg = riv.to_intyg(CertificateFactory(seed=1).certificate())
    request = soap.open_envelope(xml.parse(riv.revoke_message(riv.revocation_of(intyg))))
    xml.check(request.payload, "RevokeCertificateResponder_2.xsd")
    assert xml.read_revocation(request.payload).intygs_id == intyg.intygs_id
