"""RIV-TA endpoints in a FastAPI app (intake for the national platform, the portal's fetch for Försäkringskassan,
the Försäkringskassan simulator for dispatch): the answers and Faults of `schemas.riv.receiver` as responses,
`?wsdl` / `?xsd=` routes, the caller's client certificate mapped to a known party, and the listener's settings,
refused half-configured."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request, Response
from lxml import etree
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings
from starlette.routing import BaseRoute, Route

from schemas.riv import receiver
from schemas.riv.receiver import XML, Refused
from schemas.riv.transport import Result
from schemas.riv.wsdl import Interaction
from services.kit.mutual import client_subject
from services.kit.tls import MutualTls, common_name, mutual_listener


def fault(exc: Refused) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type=XML, headers=exc.headers)


def answer(
    interaction: Interaction, result: Result, fill: Callable[[etree._Element], object] | None = None
) -> Response:
    """The interaction's response: what `fill` writes into it first (a listing, a certificate), then `result`."""
    return Response(receiver.answer(interaction, result, fill), media_type=XML)


def caller(request: Request, known: Mapping[str, str], *, whose: str, unknown: str) -> str:
    """The party a request comes from: only over the mutual-TLS listener, with a client certificate whose common
    name is in `known` (the CA alone is not enough: it may sign others' certificates). The Faults say `whose`
    certificate is needed, and `unknown` for a certificate of no known party (Swedish)."""
    subject = client_subject(request.scope)
    if subject is None:
        raise Refused(403, f"RIV-TA-tjänsterna nås bara med ömsesidig TLS och {whose} klientcertifikat")
    party = known.get(common_name(subject) or "")
    if party is None:
        raise Refused(403, unknown)
    return party


Endpoint = Callable[[Request], Awaitable[Response]]


def _documents(interaction: Interaction) -> Endpoint:
    async def documents(request: Request) -> Response:
        """`?wsdl` and `?xsd=<file>`, with the endpoint's address as the caller reached it."""
        status, body = receiver.document(request.query_params, str(request.url.replace(query="")), interaction)
        return Response(body, status_code=status, media_type=XML)

    return documents


def routes(*endpoints: tuple[Interaction, Endpoint]) -> list[BaseRoute]:
    """The routes of RIV-TA endpoints: POST on each interaction's path to its endpoint, GET to its WSDL and
    schemas. Starlette's plain routes rather than FastAPI's (no dependencies to solve and no body to parse: an
    endpoint reads the message itself), which an app whose busiest requests they are puts ahead of its other
    routes (`services.kit.service.add_first`; Starlette tries routes in order). On intake's app, a FastAPI route
    behind the others cost about 45 µs of CPU per request more than a plain route first (measured in-process
    through the whole middleware stack)."""
    posts: list[BaseRoute] = [Route(i.path, endpoint, methods=["POST"]) for i, endpoint in endpoints]
    gets: list[BaseRoute] = [Route(i.path, _documents(i), methods=["GET"]) for i, _ in endpoints]
    return posts + gets


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
        prefix = str(self.model_config.get("env_prefix") or "").upper()
        names = f"{prefix}RIV_TLS_CERT_FILE, {prefix}RIV_TLS_KEY_FILE and {prefix}RIV_CLIENT_CA_FILE"
        files = (self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file)
        if any(files) and not all(files):
            raise ValueError(f"{names} are set together")
        if getattr(self, "environment", None) == "production" and not all(files):
            raise ValueError(f"production serves the RIV-TA endpoints over mutual TLS: set {names}")
        return self

    def mutual_tls(self) -> MutualTls | None:
        """The RIV-TA listener, when configured."""
        return mutual_listener(
            self.riv_host, self.riv_port, self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file
        )
