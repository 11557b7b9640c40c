"""SOAP 1.1 envelopes of RIV-TA basic profile 2.1: the `LogicalAddress` header names the receiving organisation,
the body holds exactly one request or response element."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv.xml import NotTheContract

S = f"{{{ns.SOAP_ENV}}}"
CONTENT_TYPE = "text/xml; charset=utf-8"
_HEADER, _BODY, _LOGICAL_ADDRESS = S + "Header", S + "Body", f"{{{ns.ADDRESSING}}}LogicalAddress"


@dataclass(frozen=True)
class Request:
    logical_address: str | None
    payload: etree._Element  # the one child of Body


def open_envelope(root: etree._Element) -> Request:
    """The logical address and payload of a SOAP 1.1 request; raise NotTheContract naming what is wrong."""
    if root.tag != S + "Envelope":
        name = etree.QName(root)
        if name.localname == "Envelope":
            raise NotTheContract([f"the envelope is in namespace {name.namespace}, not SOAP 1.1's {ns.SOAP_ENV}"])
        raise NotTheContract([f"the message is {name.localname}, not a SOAP 1.1 Envelope"])
    header = body = None
    for child in root:  # one walk (`find` compiles and runs an ElementPath per call)
        tag = child.tag
        if tag == _BODY and body is None:
            body = child
        elif tag == _HEADER and header is None:
            header = child
    if body is None:
        raise NotTheContract(["the envelope has no Body"])
    payload = [child for child in body if isinstance(child.tag, str)]
    if len(payload) != 1:
        raise NotTheContract([f"the Body must hold exactly one element, not {len(payload)}"])
    address: str | None = None
    if header is not None:
        found = next((child for child in header if child.tag == _LOGICAL_ADDRESS), None)
        if found is not None and found.text and found.text.strip():
            address = found.text.strip()
    return Request(logical_address=address, payload=payload[0])


def envelope(logical_address: str | None = None) -> tuple[etree._Element, etree._Element]:
    """A new envelope (with the LogicalAddress header when given) and its Body."""
    root = etree.Element(S + "Envelope", nsmap={"soap": ns.SOAP_ENV})
    if logical_address is not None:
        header = etree.SubElement(root, S + "Header")
        etree.SubElement(
            header, f"{{{ns.ADDRESSING}}}LogicalAddress", nsmap={"add": ns.ADDRESSING}
        ).text = logical_address
    return root, etree.SubElement(root, S + "Body")


def fault(code: str, text: str) -> bytes:
    """A SOAP 1.1 Fault: `code` is Client (the message is wrong) or Server."""
    root, body = envelope()
    element = etree.SubElement(body, S + "Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{code}"
    etree.SubElement(element, "faultstring").text = text
    return serialise(root)


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def read_fault(root: etree._Element) -> tuple[str, str] | None:
    """(faultcode, faultstring) when the envelope holds a Fault."""
    body = root.find(S + "Body")
    found = None if body is None else body.find(S + "Fault")
    if found is None:
        return None
    return (found.findtext("faultcode") or "").strip(), (found.findtext("faultstring") or "").strip()
