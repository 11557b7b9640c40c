"""The receiving side of RIV-TA, shared by every endpoint we serve (intake for the national platform, the
Försäkringskassan simulator for dispatch): open a request and check it against the contract, answer a `result`,
refuse with a SOAP Fault, serve `?wsdl` / `?xsd=`. Bad input is a Fault with HTTP 4xx, never a 5xx."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.transport import Result
from schemas.riv.wsdl import Interaction, schema_document, wsdl

XML = "text/xml; charset=utf-8"


class Refused(Exception):
    """A request answered with a SOAP Fault: `status` is the HTTP status, `text` says why (Swedish)."""

    def __init__(self, status: int, text: str, code: str = "Client", headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code, self.headers = status, text, code, headers or {}

    def body(self) -> bytes:
        return soap.fault(self.code, self.text)


def answer(interaction: Interaction, result: Result, fill: Callable[[etree._Element], object] | None = None) -> bytes:
    """The interaction's response: what `fill` writes into it first (a listing, a certificate), then `result`."""
    if fill is None and result.error_id is None:
        return _ok_or_info(interaction, result)
    return _answer(interaction, result, fill)


@functools.lru_cache(maxsize=64)
def _ok_or_info(interaction: Interaction, result: Result) -> bytes:
    """An OK or INFO answer without content: the same few answers again and again (the one of every accepted
    certificate above all), written once each. (Errors name what was wrong, so they are written each time.)"""
    return _answer(interaction, result, None)


def _answer(interaction: Interaction, result: Result, fill: Callable[[etree._Element], object] | None) -> bytes:
    root, body = soap.envelope()
    response = etree.SubElement(body, f"{{{interaction.responder_namespace}}}{interaction.name}Response")
    if fill is not None:
        fill(response)
    xml.write_result(response, f"{{{interaction.responder_namespace}}}result", result)
    return soap.serialise(root)


def open_request(request_body: bytes, interaction: Interaction, logical_address: str, served: str) -> etree._Element:
    """The payload element of a request to `logical_address` (`served` names who that is), checked against the
    contract; Refused (400) naming what is wrong."""
    try:
        envelope = soap.open_envelope(xml.parse(request_body))
        payload = envelope.payload
        expected = f"{{{interaction.responder_namespace}}}{interaction.name}"
        if payload.tag != expected:
            name = etree.QName(payload)
            raise xml.NotTheContract(
                [f"kroppen innehåller {name.localname} i namnrymden {name.namespace}, inte {interaction.name} i "
                 f"{interaction.responder_namespace}"]
            )  # fmt: skip
        if envelope.logical_address is None:
            raise xml.NotTheContract([f"SOAP-huvudet saknar LogicalAddress ({ns.ADDRESSING})"])
        if envelope.logical_address != logical_address:
            raise xml.NotTheContract(
                [f"LogicalAddress {envelope.logical_address} tjänas inte här ({served}: {logical_address})"]
            )
        xml.check(payload, interaction.xsd)
    except xml.InvalidXml as exc:
        raise Refused(400, f"meddelandet är inte välformad XML: {exc}") from None
    except xml.NotTheContract as exc:
        raise Refused(400, "meddelandet följer inte kontraktet: " + "; ".join(exc.problems)) from None
    return payload


def validation_error(problems: list[str]) -> Result:
    return Result("ERROR", "VALIDATION_ERROR", "Intyget är inte giltigt: " + "; ".join(problems))


def technical_error() -> Result:
    return Result("ERROR", "TECHNICAL_ERROR", "Tekniskt fel; försök igen senare")


def document(query: Mapping[str, str], address: str, interaction: Interaction) -> tuple[int, bytes | str]:
    """`?wsdl` and `?xsd=<file>` (HTTP status, body), with the endpoint's `address` as the caller reached it."""
    if "wsdl" in query:
        return 200, wsdl(interaction, address)
    name = query.get("xsd")
    found = schema_document(name) if name else None
    if found is None:
        return 404, soap.fault("Client", "ange ?wsdl eller ?xsd=<schemafil>")
    return 200, found
