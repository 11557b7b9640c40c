"""The national platform's side of RIV-TA: the simulator's certificates as RegisterCertificate v3 and
RevokeCertificate v2 messages, delivered over mutual TLS with the platform's client certificate (`.cache/tls/`,
made by the development CA)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.mapping import Names, from_certificate, utc_to_swedish_time
from schemas.riv.transport import Intyg, Result, Revocation
from schemas.riv.wsdl import Interaction

DEFAULT_TLS = Path(".cache/tls")
DEFAULT_URL = "https://127.0.0.1:8443"
LOGICAL_ADDRESS = "MINAINTYG"


def to_intyg(certificate: dict[str, Any], names: Names | None = None) -> Intyg:
    """A simulator certificate (our JSON) as the journal system's transport format."""
    cert = CERTIFICATE_ADAPTER.validate_python(certificate)
    return from_certificate(cert, names=names, sent_at=datetime.now(UTC))


def register_message(intyg: Intyg, logical_address: str = LOGICAL_ADDRESS) -> bytes:
    root, body = soap.envelope(logical_address)
    payload = etree.SubElement(body, f"{{{ns.REGISTER}}}RegisterCertificate", nsmap=_NSMAP)
    xml.write_intyg(payload, f"{{{ns.REGISTER}}}intyg", intyg)
    return soap.serialise(root)


def revoke_message(revocation: Revocation, logical_address: str = LOGICAL_ADDRESS) -> bytes:
    root, body = soap.envelope(logical_address)
    xml.write_revocation(body, revocation)
    return soap.serialise(root)


def revocation_of(intyg: Intyg, message: str | None = "Felaktigt utfärdat") -> Revocation:
    return Revocation(
        intygs_id=intyg.intygs_id,
        person_id=intyg.patient.person_id,
        skickat_tidpunkt=utc_to_swedish_time(datetime.now(UTC)),
        skickat_av=intyg.skapad_av,
        meddelande=message,
    )


_NSMAP = {"rc": ns.REGISTER, "gn": ns.CORE, "tp": ns.TYPES}


def client_context(tls: Path = DEFAULT_TLS) -> ssl.SSLContext:
    """The platform's TLS client: verifies intake against the CA, presents the platform's certificate."""
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    context.load_cert_chain(str(tls / "platform.pem"), str(tls / "platform-key.pem"))
    return context


async def call(client: httpx.AsyncClient, base_url: str, interaction: Interaction, message: bytes) -> Result:
    """POST one message; the `result` of the answer, or a Result naming the fault / HTTP status."""
    response = await client.post(
        f"{base_url.rstrip('/')}{interaction.path}",
        content=message,
        headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": interaction.soap_action},
    )
    try:
        root = xml.parse(response.content)
    except xml.InvalidXml:
        return Result("FAULT", f"HTTP {response.status_code}", response.text[:200])
    if (fault := soap.read_fault(root)) is not None:
        return Result("FAULT", f"HTTP {response.status_code}", fault[1])
    found = next(root.iter(f"{{{ns.CORE}}}resultCode"), None)
    result = None if found is None else found.getparent()
    if result is None:
        return Result("FAULT", f"HTTP {response.status_code}", "no result in the answer")
    return xml.read_result(result)
