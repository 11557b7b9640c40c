"""Försäkringskassan fetches the citizen's certificates from Mina intyg (issue #13): on Försäkringskassan's Mina
sidor the citizen "hämtar läkarintyget från Mina intyg", and Försäkringskassan calls ListCertificatesForCitizen v3
and GetCertificate v2 here — SOAP 1.1 over the portal's mutual-TLS listener, the client certificate's common name
one of PORTAL_RIV_CLIENTS, the `LogicalAddress` header naming Mina intyg (services/kit/riv.py).

What is answered is the portal's read model: it holds a citizen's certificates only while the citizen's consent
stands (consent releases them, a withdrawal removes them) and never a revoked one, so a citizen without consent
has no certificates here (an empty list; GetCertificate answers ERROR). Each certificate given out is written to
the citizen's access log as fetched by the party, shown on "Om dina uppgifter".
"""

from __future__ import annotations

import dataclasses
from datetime import date

import structlog
from fastapi import Request, Response
from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv import xml
from schemas.riv.mapping import from_certificate, utc_to_swedish_time
from schemas.riv.receiver import Refused, open_request, technical_error
from schemas.riv.transport import CV, Intyg, Result, Status
from schemas.riv.wsdl import GET_CERTIFICATE, LIST_CERTIFICATES_FOR_CITIZEN
from services.kit.riv import answer, caller, fault, routes
from services.kit.swedish import RECIPIENTS
from services.portal.deps import Portal, portal_of
from services.portal.handlers import Fetched

log = structlog.get_logger(__name__)
LIST = LIST_CERTIFICATES_FOR_CITIZEN
GET = GET_CERTIFICATE
T = f"{{{ns.TYPES}}}"


def _party(request: Request, portal: Portal) -> str:
    return caller(
        request,
        portal.settings.riv_clients,
        whose="en ansluten mottagares",
        unknown="klientcertifikatet tillhör ingen ansluten mottagare",
    )


def _intyg(fetched: Fetched, party: str) -> Intyg:
    intyg = from_certificate(fetched.certificate, sent_at=fetched.sent_at)
    if fetched.sent_at is None:
        return intyg
    sent = Status(
        part=CV(party, ns.KV_PART, display_name=RECIPIENTS.get(party)),
        status=CV("SENTTO", ns.KV_STATUS, display_name="Skickat"),
        tidpunkt=utc_to_swedish_time(fetched.sent_at),
    )
    return dataclasses.replace(intyg, status=(sent,))


def _date(payload: etree._Element, tag: str) -> date | None:
    text = payload.findtext(f"{{{LIST.responder_namespace}}}{tag}")
    return None if text is None else date.fromisoformat(text.strip())


def _technical(interaction_name: str, exc: Exception) -> Result:
    # No traceback: a certificate's content (a personnummer, a diagnosis) may stand in an exception's message.
    log.error("portal.riv.technical_error", interaction=interaction_name, error=type(exc).__name__)
    return technical_error()


async def list_certificates_for_citizen(request: Request) -> Response:
    portal = portal_of(request)
    try:
        party = _party(request, portal)
        payload = open_request(await request.body(), LIST, portal.settings.riv_logical_address, "Mina intyg")
    except Refused as exc:
        return fault(exc)
    r = f"{{{LIST.responder_namespace}}}"
    person = xml.read_ii(payload.find(r + "person-id"))  # type: ignore[arg-type]
    types = [xml.read_cv(t).code for t in payload.iterfind(r + "intygTyp")]
    archived = (payload.findtext(r + "arkiverade") or "").strip() in ("true", "1")
    start, end = _date(payload, "fromDatum"), _date(payload, "tomDatum")
    try:
        answered = await portal.handlers.fetch_for_party(
            party, person.extension, types, lambda f: _intyg(f, party), archived=archived, signed_from=start,
            signed_to=end,
        )  # fmt: skip
    except Exception as exc:
        return answer(LIST, _technical(LIST.name, exc))
    log.info("portal.riv.listed", party=party, certificates=len(answered))

    def fill(response: etree._Element) -> None:
        listing = etree.SubElement(response, r + "intygsLista")
        for intyg in answered:
            xml.write_intyg(listing, r + "intyg", intyg)

    return answer(LIST, Result("OK"), fill)


async def get_certificate(request: Request) -> Response:
    portal = portal_of(request)
    try:
        party = _party(request, portal)
        payload = open_request(await request.body(), GET, portal.settings.riv_logical_address, "Mina intyg")
    except Refused as exc:
        return fault(exc)
    r = f"{{{GET.responder_namespace}}}"
    certificate_id = xml.read_ii(payload.find(r + "intygs-id")).extension  # type: ignore[arg-type]
    asked_by = (payload.findtext(f"{r}part/{T}code") or "").strip()
    if asked_by != party:
        return answer(
            GET, Result("ERROR", "VALIDATION_ERROR", f"part {asked_by} stämmer inte med klientcertifikatets ({party})")
        )
    try:
        intyg = await portal.handlers.get_for_party(party, certificate_id, lambda f: _intyg(f, party))
        if intyg is None:
            log.info("portal.riv.not_found", party=party, certificate_id=certificate_id)
            return answer(
                GET, Result("ERROR", "VALIDATION_ERROR", f"Intyget {certificate_id} finns inte hos Mina intyg")
            )
    except Exception as exc:
        return answer(GET, _technical(GET.name, exc))
    log.info("portal.riv.fetched", party=party, certificate_id=certificate_id)
    return answer(GET, Result("OK"), lambda response: xml.write_intyg(response, r + "intyg", intyg))


ROUTES = routes((LIST, list_certificates_for_citizen), (GET, get_certificate))
