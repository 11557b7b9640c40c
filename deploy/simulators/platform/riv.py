"""The national platform's side of RIV-TA: the simulator's certificates as RegisterCertificate v3 and
RevokeCertificate v2 messages, delivered over mutual TLS with the platform's client certificate (`.cache/tls/`,
made by the development CA)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.riv import client
from schemas.riv.mapping import Names, from_certificate, utc_to_swedish_time
from schemas.riv.transport import Intyg, Revocation

DEFAULT_TLS = Path(".cache/tls")
DEFAULT_URL = "https://127.0.0.1:8443"
LOGICAL_ADDRESS = "MINAINTYG"


def to_intyg(certificate: dict[str, Any], names: Names | None = None) -> Intyg:
    """A simulator certificate (our JSON) as the journal system's transport format."""
    cert = CERTIFICATE_ADAPTER.validate_python(certificate)
    return from_certificate(cert, names=names, sent_at=datetime.now(UTC))


def register_message(intyg: Intyg, logical_address: str = LOGICAL_ADDRESS) -> bytes:
    return client.register_message(intyg, logical_address)


def revoke_message(revocation: Revocation, logical_address: str = LOGICAL_ADDRESS) -> bytes:
    return client.revoke_message(revocation, logical_address)


def revocation_of(intyg: Intyg, message: str | None = "Felaktigt utfärdat") -> Revocation:
    return Revocation(
        intygs_id=intyg.intygs_id,
        person_id=intyg.patient.person_id,
        skickat_tidpunkt=utc_to_swedish_time(datetime.now(UTC)),
        skickat_av=intyg.skapad_av,
        meddelande=message,
    )


def client_context(tls: Path = DEFAULT_TLS) -> ssl.SSLContext:
    """The platform's TLS client: verifies intake against the CA, presents the platform's certificate."""
    return client.client_context(tls / "ca.pem", tls / "platform.pem", tls / "platform-key.pem")


call = client.call
