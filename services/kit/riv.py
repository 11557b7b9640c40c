"""RIV-TA endpoints in a FastAPI app (intake for the national platform, the Försäkringskassan simulator for
dispatch): the answers and Faults of `schemas.riv.receiver` as responses, `?wsdl` / `?xsd=` routes, and the caller's
client certificate mapped to a known party."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Request, Response

from schemas.riv import receiver
from schemas.riv.receiver import XML, Refused
from schemas.riv.transport import Result
from schemas.riv.wsdl import Interaction
from services.kit.mutual import client_subject
from services.kit.tls import common_name


def fault(exc: Refused) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type=XML, headers=exc.headers)


def answer(interaction: Interaction, result: Result) -> Response:
    return Response(receiver.answer(interaction, result), media_type=XML)


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


def _documents(interaction: Interaction) -> Callable[[Request], Awaitable[Response]]:
    async def documents(request: Request) -> Response:
        """`?wsdl` and `?xsd=<file>`, with the endpoint's address as the caller reached it."""
        status, body = receiver.document(request.query_params, str(request.url.replace(query="")), interaction)
        return Response(body, status_code=status, media_type=XML)

    return documents


def add_documents(router: APIRouter, *interactions: Interaction) -> None:
    """GET on each interaction's endpoint serves its WSDL and schemas."""
    for interaction in interactions:
        router.add_api_route(interaction.path, _documents(interaction), methods=["GET"])
