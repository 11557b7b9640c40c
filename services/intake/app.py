"""Intake's HTTP API for the national platform (wired by `bootstrap.py`, run by the kit's service host)."""

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, Field, ValidationError

from schemas.base import Frozen
from schemas.certificate import CERTIFICATE_ADAPTER
from services.intake import riv
from services.intake.bootstrap import bootstrap
from services.intake.domain import (
    InvalidCertificate,
    Problem,
    ReceiveOutcome,
    RevokeOutcome,
    time_problem,
)
from services.intake.handlers import Clock, Intake, receive_certificate, revoke_certificate
from services.intake.settings import IntakeSettings
from services.kit.http import BearerGate, document_request_body
from services.kit.problems import (
    ErrorBody,
    ValidationErrorBody,
    error_response,
    problem_from_pydantic,
    problems_response,
)
from services.kit.service import add_first, service_app, state_dependency
from services.kit.text import Message
from services.kit.tracing import current_traceparent

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class ReceiptBody(Frozen):
    status: str = Field(description="received | already_received | revoked | already_revoked")
    certificate_id: str


class RevocationRequest(Frozen):
    """Optional details of a revocation."""

    revoked_at: AwareDatetime | None = None
    reason: Annotated[Message, Field(max_length=500)] | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


router = APIRouter()
IntakeState = Annotated[Intake, Depends(state_dependency(Intake))]

bearer = HTTPBearer(auto_error=False, description="The national platform's credential")


async def platform(
    request: Request, intake: IntakeState, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The platform that BearerGate authenticated (the bearer dependency documents the scheme), within its rate."""
    name: str = request.scope["state"]["caller"]
    intake.deliveries.hit(name)
    return name


responses: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong platform credential"},
    413: {"model": ErrorBody, "description": "Body too large"},
    415: {"model": ErrorBody, "description": "Body is not JSON"},
    422: {"model": ValidationErrorBody, "description": "Invalid: every problem as {path, message}"},
    429: {"model": ErrorBody, "description": "Over the platform's delivery rate (INTAKE_RATE_LIMIT); see Retry-After"},
}


@router.post(
    "/v1/certificates",
    status_code=201,
    response_model=ReceiptBody,
    summary="Deliver one issued certificate",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One certificate; `type` selects its content",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Certificate"}}},
        }
    },
    responses={
        200: {"model": ReceiptBody, "description": "Already received (same id, same patient)"},
        403: {"model": ErrorBody, "description": "Care unit not connected"},
        409: {"model": ErrorBody, "description": "Id already used for another patient"},
        **responses,
    },
)
async def post_certificate(
    request: Request, intake: IntakeState, platform_name: Annotated[str, Depends(platform)]
) -> JSONResponse:
    body = await request.body()
    try:
        # pydantic-core parses and validates in one pass, about twice as fast as json.loads + validation.
        certificate = CERTIFICATE_ADAPTER.validate_json(body)
        original = body.decode("utf-8")
    except ValidationError as exc:
        return problems_response([problem_from_pydantic(e) for e in exc.errors()], "the certificate is invalid")
    except UnicodeDecodeError:
        return problems_response([Problem("body", "is not valid UTF-8")], "the certificate is invalid")
    try:
        outcome = await receive_certificate(
            intake,
            certificate,
            original=original,
            platform=platform_name,
            correlation_id=request.scope["state"]["correlation_id"],
            traceparent=current_traceparent(),
        )
    except InvalidCertificate as exc:
        return problems_response(exc.problems, "the certificate is invalid")
    if outcome is ReceiveOutcome.NOT_CONNECTED:
        return error_response(403, f"care unit {certificate.care_unit.hsa_id} is not connected to Mina intyg")
    if outcome is ReceiveOutcome.CONFLICT:
        return error_response(409, f"certificate id {certificate.id} was already received for another patient")
    status = 201 if outcome is ReceiveOutcome.ACCEPTED else 200
    return JSONResponse({"status": outcome.value, "certificate_id": certificate.id}, status_code=status)


@router.post(
    "/v1/certificates/{certificate_id}/revocation",
    response_model=ReceiptBody,
    summary="Revoke a certificate",
    responses={
        404: {
            "model": ErrorBody,
            "description": "Unknown id: the revocation may have overtaken the certificate; retry after Retry-After",
        },
        **responses,
    },
)
async def post_revocation(
    request: Request,
    intake: IntakeState,
    certificate_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
    platform_name: Annotated[str, Depends(platform)],
    revocation: Annotated[RevocationRequest | None, Body()] = None,
) -> JSONResponse:
    if revocation is not None and revocation.revoked_at is not None:
        skew = timedelta(seconds=intake.settings.clock_skew_seconds)
        if (problem := time_problem("revoked_at", revocation.revoked_at, intake.clock(), skew)) is not None:
            return problems_response([problem], "the revocation is invalid")
    outcome = await revoke_certificate(
        intake,
        certificate_id,
        revoked_at=revocation.revoked_at if revocation else None,
        reason=revocation.reason if revocation else None,
        platform=platform_name,
        correlation_id=request.scope["state"]["correlation_id"],
        traceparent=current_traceparent(),
    )
    if outcome is RevokeOutcome.UNKNOWN:
        return error_response(
            404,
            f"certificate {certificate_id} is not known (yet); retry later",
            headers={"Retry-After": str(intake.settings.revocation_retry_after_seconds)},
        )
    return JSONResponse({"status": outcome.value, "certificate_id": certificate_id})


def create_app(settings: IntakeSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    """The intake application; `settings` default to the environment."""
    settings = settings or IntakeSettings()
    app = service_app(
        "intake",
        settings,
        functools.partial(bootstrap, settings=settings, clock=clock),
        migrations=MIGRATIONS,
        title="Mina intyg – intake",
        summary="Receives issued certificates from the national service platform.",
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.include_router(router)
    add_first(app, riv.ROUTES)
    document_request_body(
        app, "Certificate", CERTIFICATE_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    )
    # Added last, so it runs first: no body is parsed for a caller that is not a known platform.
    app.add_middleware(BearerGate, tokens=settings.platform_tokens, path_prefix="/v1/", what="platform")
    return app


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problems_response([problem_from_pydantic(e) for e in exc.errors()], "the certificate is invalid")
