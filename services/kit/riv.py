"""What every RIV-TA server of ours shares (intake's RegisterCertificate and RevokeCertificate, the portal's
ListCertificatesForCitizen and GetCertificate for Försäkringskassan): SOAP 1.1 over a mutual-TLS listener, the
caller known by its client certificate's common name, the `LogicalAddress` header naming Mina intyg, requests
checked against our schemas, a message that is not the contract answered with a SOAP Fault (4xx, never a 5xx page),
`?wsdl` and `?xsd=` served at each endpoint, and the listener's settings, refused half-configured."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from lxml import etree
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.transport import Result
from schemas.riv.wsdl import Interaction, schema_document, wsdl
from services.kit.mutual import client_subject
from services.kit.tls import MutualTls, common_name

XML = "text/xml; charset=utf-8"


class Refused(Exception):
    """A request answered with a SOAP Fault: `status` is the HTTP status, `text` says why (Swedish)."""

    def __init__(self, status: int, text: str, code: str = "Client", headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code, self.headers = status, text, code, headers or {}


def fault(exc: Refused) -> Response:
    return Response(soap.fault(exc.code, exc.text), status_code=exc.status, media_type=XML, headers=exc.headers)


def answer(
    interaction: Interaction, result: Result, fill: Callable[[etree._Element], object] | None = None
) -> Response:
    """The interaction's response element: what `fill` writes into it first, then `result`."""
    root, body = soap.envelope()
    response = etree.SubElement(body, f"{{{interaction.responder_namespace}}}{interaction.name}Response")
    if fill is not None:
        fill(response)
    xml.write_result(response, f"{{{interaction.responder_namespace}}}result", result)
    return Response(soap.serialise(root), media_type=XML)


def caller(request: Request, clients: dict[str, str], refused: str) -> str:
    """Who calls: only over the mutual-TLS listener, with a client certificate whose common name is one of
    `clients` (CN → name; the CA alone is not enough: it may sign others' certificates). Refused (403) otherwise,
    `refused` saying why for a CN not in `clients`."""
    subject = client_subject(request.scope)
    if subject is None:
        raise Refused(403, "RIV-TA-tjänsterna nås bara med ömsesidig TLS och ett anslutet klientcertifikat")
    name = clients.get(common_name(subject) or "")
    if name is None:
        raise Refused(403, refused)
    return name


def open_request(request_body: bytes, interaction: Interaction, logical_address: str) -> etree._Element:
    """The payload element of a request to `logical_address`, checked against the contract; Refused (400) naming
    what is wrong."""
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
                [f"LogicalAddress {envelope.logical_address} tjänas inte här (Mina intyg: {logical_address})"]
            )
        xml.check(payload, interaction.xsd)
    except xml.InvalidXml as exc:
        raise Refused(400, f"meddelandet är inte välformad XML: {exc}") from None
    except xml.NotTheContract as exc:
        raise Refused(400, "meddelandet följer inte kontraktet: " + "; ".join(exc.problems)) from None
    return payload


async def serve_document(request: Request, interaction: Interaction) -> Response:
    """`?wsdl` and `?xsd=<file>`, with the endpoint's address as the caller reached it."""
    if "wsdl" in request.query_params:
        address = str(request.url.replace(query=""))
        return Response(wsdl(interaction, address), media_type=XML)
    name = request.query_params.get("xsd")
    document = schema_document(name) if name else None
    if document is None:
        return Response(soap.fault("Client", "ange ?wsdl eller ?xsd=<schemafil>"), status_code=404, media_type=XML)
    return Response(document, media_type=XML)


class RivListenerSettings(BaseSettings):
    """The RIV-TA listener of a service (fields under the service's env prefix): its certificate, key and client CA
    are set together, and production refuses to start without them. A service sets its own port and clients."""

    riv_host: str = "127.0.0.1"
    riv_port: int = Field(8443, description="The RIV-TA endpoints' HTTPS port (client certificates required)")
    riv_tls_cert_file: str | None = Field(None, description="The RIV-TA listener's server certificate (PEM)")
    riv_tls_key_file: str | None = Field(None, description="Its private key (PEM)")
    riv_client_ca_file: str | None = Field(None, description="CA whose client certificates may connect")
    riv_logical_address: str = Field(
        "MINAINTYG", description="The logical address (RIV-TA LogicalAddress header) Mina intyg is registered under"
    )

    @model_validator(mode="after")
    def _riv_listener_in_production(self) -> RivListenerSettings:
        prefix = str(self.model_config.get("env_prefix") or "")
        names = ", ".join(f"{prefix}{n}".upper() for n in ("riv_tls_cert_file", "riv_tls_key_file"))
        names += f" and {prefix.upper()}RIV_CLIENT_CA_FILE"
        files = (self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file)
        if any(files) and not all(files):
            raise ValueError(f"{names} are set together")
        if getattr(self, "environment", None) == "production" and not all(files):
            raise ValueError(f"production serves the RIV-TA endpoints over mutual TLS: set {names}")
        return self

    def mutual_tls(self) -> MutualTls | None:
        """The RIV-TA listener, when configured."""
        if not (self.riv_tls_cert_file and self.riv_tls_key_file and self.riv_client_ca_file):
            return None
        return MutualTls(
            self.riv_host, self.riv_port, self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file
        )
