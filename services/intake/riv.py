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
from fastapi import Request, Response
from lxml import etree

from schemas.certificate import County
from schemas.riv import namespaces as ns
from schemas.riv import receiver, xml
from schemas.riv.mapping import NotMappable, swedish_time_to_utc, to_certificate
from schemas.riv.receiver import Refused
from schemas.riv.rules import check as published_rules
from schemas.riv.transport import Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE, Interaction
from services.intake import repo, svenska
from services.intake.domain import InvalidCertificate, ReceiveOutcome, RevokeOutcome, time_problem
from services.intake.handlers import Intake, receive_certificate, revoke_certificate
from services.kit import riv as rivhttp
from services.kit.ratelimit import TooManyRequests
from services.kit.service import app_state
from services.kit.swedish import swedish_date
from services.kit.tracing import current_traceparent

log = structlog.get_logger(__name__)

_fault = rivhttp.fault
_answer = rivhttp.answer


def _platform(request: Request, intake: Intake) -> str:
    """The platform a request comes from: only over the mutual-TLS listener, with a client certificate whose
    common name is one of INTAKE_RIV_CLIENTS (the CA alone is not enough: it may sign others' certificates)."""
    platform = rivhttp.caller(
        request,
        intake.settings.riv_clients,
        whose="plattformens",
        unknown="klientcertifikatet tillhör ingen ansluten plattform",
    )
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
    return receiver.open_request(request_body, interaction, intake.settings.riv_logical_address, "Mina intyg")


_validation_error = receiver.validation_error


async def _registered_county(intake: Intake, unit: str) -> str | Result:
    """The county of a connected care unit, as the register has it now (and remembered for the next delivery), or
    the answer refusing the delivery."""
    connected, county = await repo.connected_unit_county(intake.pool, unit)
    if not connected:
        return Result("ERROR", "VALIDATION_ERROR", f"Vårdenheten {unit} är inte ansluten till Mina intyg")
    if county is None:
        return Result("ERROR", "APPLICATION_ERROR", f"Vårdenheten {unit} saknar län i Mina intygs register")
    intake.unit_counties.remember(unit, county)
    return county


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
    try:
        original = body.decode("utf-8")
        for remembered in (intake.unit_counties.get(unit), None):
            county = remembered or await _registered_county(intake, unit)
            if isinstance(county, Result):
                return _answer(REGISTER_CERTIFICATE, county)
            try:
                certificate = to_certificate(intyg, County(county))
            except NotMappable as exc:
                return _answer(REGISTER_CERTIFICATE, _validation_error(exc.problems))
            try:
                outcome = await receive_certificate(
                    intake,
                    certificate,
                    original=original,
                    platform=platform,
                    correlation_id=request.scope["state"]["correlation_id"],
                    traceparent=current_traceparent(),
                    rules_checked=True,
                    unit_county=county,
                )
            except InvalidCertificate as exc:
                return _answer(REGISTER_CERTIFICATE, _validation_error([svenska.problem(p) for p in exc.problems]))
            if outcome is not ReceiveOutcome.NOT_CONNECTED or remembered is None:
                break
            # Disconnected, or moved to another county, since the county was remembered: look it up again.
            intake.unit_counties.forget(unit)
    except Exception as exc:
        log.exception(
            "intake.riv.technical_error",
            error=type(exc).__name__,
            certificate_id=intyg.intygs_id.extension,
            care_unit=unit,
            platform=platform,
        )
        return _answer(REGISTER_CERTIFICATE, receiver.technical_error())
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
        return _answer(REVOKE_CERTIFICATE, receiver.technical_error())
    if outcome is RevokeOutcome.UNKNOWN:
        # The revocation may have overtaken its certificate: the platform resends.
        return _answer(
            REVOKE_CERTIFICATE,
            Result("ERROR", "APPLICATION_ERROR", f"Intyget {certificate_id} är inte känt (ännu); försök igen senare"),
        )
    if outcome is RevokeOutcome.ALREADY_REVOKED:
        return _answer(REVOKE_CERTIFICATE, Result("INFO", None, "Intyget är redan återkallat"))
    return _answer(REVOKE_CERTIFICATE, Result("OK"))


ROUTES = rivhttp.routes((REGISTER_CERTIFICATE, register_certificate), (REVOKE_CERTIFICATE, revoke))
