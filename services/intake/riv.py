"""Intake's RIV-TA web services (issue #13): RegisterCertificate v3 and RevokeCertificate v2, as the national
platform calls them — SOAP 1.1 over mutual TLS, the `LogicalAddress` header naming Mina intyg, the answer a `result`
as the national certificate store answers (OK / INFO / ERROR with VALIDATION_ERROR, APPLICATION_ERROR or
TECHNICAL_ERROR and a Swedish resultText naming every problem). A message that is not well-formed, or not the
contract, is a SOAP Fault (HTTP 400: bad input is never a 5xx). `?wsdl` serves each endpoint's WSDL.

Both entry points meet in `handlers.receive_certificate`: a certificate registered here and the same one delivered
as JSON produce identical events; the original XML is stored as received.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from fastapi import APIRouter, Request, Response
from lxml import etree

from schemas.certificate import County
from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.mapping import NotMappable, swedish_time_to_utc, to_certificate
from schemas.riv.rules import check as published_rules
from schemas.riv.transport import Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE, Interaction, schema_document, wsdl
from services.intake import repo, svenska
from services.intake.domain import InvalidCertificate, ReceiveOutcome, RevokeOutcome, time_problem
from services.intake.handlers import Intake, receive_certificate, revoke_certificate
from services.kit.mutual import client_subject
from services.kit.ratelimit import TooManyRequests
from services.kit.service import app_state
from services.kit.swedish import swedish_date
from services.kit.tls import common_name
from services.kit.tracing import current_traceparent

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)
XML = "text/xml; charset=utf-8"


class Refused(Exception):
    """A request answered with a SOAP Fault: `status` is the HTTP status, `text` says why (Swedish)."""

    def __init__(self, status: int, text: str, code: str = "Client", headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code, self.headers = status, text, code, headers or {}


def _fault(exc: Refused) -> Response:
    return Response(soap.fault(exc.code, exc.text), status_code=exc.status, media_type=XML, headers=exc.headers)


def _answer(interaction: Interaction, result: Result) -> Response:
    root, body = soap.envelope()
    response = etree.SubElement(body, f"{{{interaction.responder_namespace}}}{interaction.name}Response")
    xml.write_result(response, f"{{{interaction.responder_namespace}}}result", result)
    return Response(soap.serialise(root), media_type=XML)


def _platform(request: Request, intake: Intake) -> str:
    """The platform a request comes from: only over the mutual-TLS listener, with a client certificate whose
    common name is one of INTAKE_RIV_CLIENTS (the CA alone is not enough: it may sign others' certificates)."""
    subject = client_subject(request.scope)
    if subject is None:
        raise Refused(403, "RIV-TA-tjänsterna nås bara med ömsesidig TLS och plattformens klientcertifikat")
    platform = intake.settings.riv_clients.get(common_name(subject) or "")
    if platform is None:
        raise Refused(403, "klientcertifikatet tillhör ingen ansluten plattform")
    try:
        intake.deliveries.hit(platform)
    except TooManyRequests as exc:
        raise Refused(
            429,
            f"för många leveranser; försök igen om {exc.retry_after} s",
            "Server",
            {"Retry-After": str(exc.retry_after)},
        ) from None
    return platform


def _open(request_body: bytes, interaction: Interaction, intake: Intake) -> etree._Element:
    """The payload element of a request, checked against the contract; Refused naming what is wrong."""
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
        if envelope.logical_address != intake.settings.riv_logical_address:
            raise xml.NotTheContract(
                [f"LogicalAddress {envelope.logical_address} tjänas inte här (Mina intyg: "
                 f"{intake.settings.riv_logical_address})"]
            )  # fmt: skip
        xml.check(payload, interaction.xsd)
    except xml.InvalidXml as exc:
        raise Refused(400, f"meddelandet är inte välformad XML: {exc}") from None
    except xml.NotTheContract as exc:
        raise Refused(400, "meddelandet följer inte kontraktet: " + "; ".join(exc.problems)) from None
    return payload


def _validation_error(problems: list[str]) -> Result:
    return Result("ERROR", "VALIDATION_ERROR", "Intyget är inte giltigt: " + "; ".join(problems))


async def _serve_document(request: Request, interaction: Interaction) -> Response:
    """`?wsdl` and `?xsd=<file>`, with the endpoint's address as the caller reached it."""
    if "wsdl" in request.query_params:
        address = str(request.url.replace(query=""))
        return Response(wsdl(interaction, address), media_type=XML)
    name = request.query_params.get("xsd")
    document = schema_document(name) if name else None
    if document is None:
        return Response(soap.fault("Client", "ange ?wsdl eller ?xsd=<schemafil>"), status_code=404, media_type=XML)
    return Response(document, media_type=XML)


@router.get(REGISTER_CERTIFICATE.path)
async def register_documents(request: Request) -> Response:
    return await _serve_document(request, REGISTER_CERTIFICATE)


@router.get(REVOKE_CERTIFICATE.path)
async def revoke_documents(request: Request) -> Response:
    return await _serve_document(request, REVOKE_CERTIFICATE)


@router.post(REGISTER_CERTIFICATE.path)
async def register_certificate(request: Request) -> Response:
    intake = app_state(request.app, Intake)
    try:
        platform = _platform(request, intake)
        body = await request.body()
        payload = _open(body, REGISTER_CERTIFICATE, intake)
    except Refused as exc:
        return _fault(exc)
    intyg = xml.read_intyg(payload.find(f"{{{ns.REGISTER}}}intyg"))  # type: ignore[arg-type]
    violations = published_rules(intyg, swedish_date(intake.clock()))
    if violations:
        return _answer(REGISTER_CERTIFICATE, _validation_error([f"{v.rule}: {v.message}" for v in violations]))
    unit = intyg.skapad_av.enhet.enhets_id.extension
    log_ = log.bind(certificate_id=intyg.intygs_id.extension, care_unit=unit, platform=platform)
    try:
        connected, county = await repo.connected_unit_county(intake.pool, unit)
        if not connected:
            return _answer(
                REGISTER_CERTIFICATE,
                Result("ERROR", "VALIDATION_ERROR", f"Vårdenheten {unit} är inte ansluten till Mina intyg"),
            )
        if county is None:
            return _answer(
                REGISTER_CERTIFICATE,
                Result("ERROR", "APPLICATION_ERROR", f"Vårdenheten {unit} saknar län i Mina intygs register"),
            )
        try:
            certificate = to_certificate(intyg, County(county))
        except NotMappable as exc:
            return _answer(REGISTER_CERTIFICATE, _validation_error(exc.problems))
        try:
            outcome = await receive_certificate(
                intake,
                certificate,
                original=body.decode("utf-8"),
                platform=platform,
                correlation_id=request.scope["state"]["correlation_id"],
                traceparent=current_traceparent(),
                rules_checked=True,
            )
        except InvalidCertificate as exc:
            return _answer(REGISTER_CERTIFICATE, _validation_error([svenska.problem(p) for p in exc.problems]))
    except Exception as exc:
        log_.exception("intake.riv.technical_error", error=type(exc).__name__)
        return _answer(REGISTER_CERTIFICATE, Result("ERROR", "TECHNICAL_ERROR", "Tekniskt fel; försök igen senare"))
    if outcome is ReceiveOutcome.ALREADY_RECEIVED:
        return _answer(REGISTER_CERTIFICATE, Result("INFO", None, "Intyget är redan registrerat"))
    if outcome is ReceiveOutcome.CONFLICT:
        return _answer(
            REGISTER_CERTIFICATE,
            Result("ERROR", "VALIDATION_ERROR", "Ett intyg med samma intygs-id är registrerat för en annan patient"),
        )
    if outcome is ReceiveOutcome.NOT_CONNECTED:
        return _answer(
            REGISTER_CERTIFICATE,
            Result("ERROR", "VALIDATION_ERROR", f"Vårdenheten {unit} är inte ansluten till Mina intyg"),
        )
    return _answer(REGISTER_CERTIFICATE, Result("OK"))


@router.post(REVOKE_CERTIFICATE.path)
async def revoke(request: Request) -> Response:
    intake = app_state(request.app, Intake)
    try:
        platform = _platform(request, intake)
        payload = _open(await request.body(), REVOKE_CERTIFICATE, intake)
    except Refused as exc:
        return _fault(exc)
    revocation = xml.read_revocation(payload)
    certificate_id = revocation.intygs_id.extension
    revoked_at = swedish_time_to_utc(revocation.skickat_tidpunkt)
    skew = timedelta(seconds=intake.settings.clock_skew_seconds)
    if (problem := time_problem("skickatTidpunkt", revoked_at, intake.clock(), skew)) is not None:
        return _answer(REVOKE_CERTIFICATE, _validation_error([svenska.problem(problem)]))
    try:
        async with intake.pool.acquire() as conn:
            stored = await repo.find_certificate(conn, certificate_id)
        if stored is not None and stored.personnummer != revocation.person_id.extension:
            return _answer(
                REVOKE_CERTIFICATE,
                Result("ERROR", "VALIDATION_ERROR", "Intyget är registrerat för en annan patient"),
            )
        outcome = await revoke_certificate(
            intake,
            certificate_id,
            revoked_at=revoked_at,
            reason=revocation.meddelande or None,
            platform=platform,
            correlation_id=request.scope["state"]["correlation_id"],
            traceparent=current_traceparent(),
        )
    except Exception as exc:
        log.exception("intake.riv.technical_error", error=type(exc).__name__, certificate_id=certificate_id)
        return _answer(REVOKE_CERTIFICATE, Result("ERROR", "TECHNICAL_ERROR", "Tekniskt fel; försök igen senare"))
    if outcome is RevokeOutcome.UNKNOWN:
        # The revocation may have overtaken its certificate: the platform resends.
        return _answer(
            REVOKE_CERTIFICATE,
            Result("ERROR", "APPLICATION_ERROR", f"Intyget {certificate_id} är inte känt (ännu); försök igen senare"),
        )
    if outcome is RevokeOutcome.ALREADY_REVOKED:
        return _answer(REVOKE_CERTIFICATE, Result("INFO", None, "Intyget är redan återkallat"))
    return _answer(REVOKE_CERTIFICATE, Result("OK"))
