"""The calling side of RIV-TA, shared by everyone who sends RegisterCertificate v3 and RevokeCertificate v2: the
national platform's simulator (to intake) and dispatch (to Försäkringskassan). The messages, the TLS client with a
function certificate, and the reading of an answer (a `result`, a SOAP Fault, or neither)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.transport import Intyg, Result, Revocation
from schemas.riv.wsdl import Interaction

# A Result whose result_code is FAULT is no RIV-TA answer: the call was answered with a SOAP Fault, an HTTP error
# or something unreadable; error_id is "HTTP <status>", result_text what was said.
FAULT = "FAULT"

_NSMAP = {"rc": ns.REGISTER, "gn": ns.CORE, "tp": ns.TYPES}


def register_message(intyg: Intyg, logical_address: str) -> bytes:
    """A RegisterCertificate v3 request to `logical_address`."""
    root, body = soap.envelope(logical_address)
    payload = etree.SubElement(body, f"{{{ns.REGISTER}}}RegisterCertificate", nsmap=_NSMAP)
    xml.write_intyg(payload, f"{{{ns.REGISTER}}}intyg", intyg)
    return soap.serialise(root)


def revoke_message(revocation: Revocation, logical_address: str) -> bytes:
    """A RevokeCertificate v2 request to `logical_address`."""
    root, body = soap.envelope(logical_address)
    xml.write_revocation(body, revocation)
    return soap.serialise(root)


def client_context(ca: Path | str, cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A TLS client that verifies the receiver against `ca` and presents the function certificate `cert`."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def http_status(result: Result) -> int | None:
    """The HTTP status of a FAULT result, else None."""
    if result.result_code != FAULT or not result.error_id or not result.error_id.startswith("HTTP "):
        return None
    try:
        return int(result.error_id.removeprefix("HTTP "))
    except ValueError:
        return None


def read_answer(status: int, content: bytes) -> Result:
    """The `result` of an answer; a FAULT result naming the SOAP Fault, or the HTTP status of anything else."""
    try:
        root = xml.parse(content)
    except xml.InvalidXml:
        return Result(FAULT, f"HTTP {status}", content[:200].decode("utf-8", "replace"))
    if (fault := soap.read_fault(root)) is not None:
        return Result(FAULT, f"HTTP {status}", fault[1])
    found = next(root.iter(f"{{{ns.CORE}}}resultCode"), None)
    result = None if found is None else found.getparent()
    if result is None:
        return Result(FAULT, f"HTTP {status}", "no result in the answer")
    return xml.read_result(result)


def headers(interaction: Interaction) -> dict[str, str]:
    return {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": interaction.soap_action}


async def call(client: httpx.AsyncClient, base_url: str, interaction: Interaction, message: bytes) -> Result:
    """POST one message; the `result` of the answer, or a FAULT result naming the fault / HTTP status."""
    response = await client.post(
        f"{base_url.rstrip('/')}{interaction.path}", content=message, headers=headers(interaction)
    )
    return read_answer(response.status_code, response.content)
