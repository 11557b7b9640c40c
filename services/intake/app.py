"""Intake's HTTP API for the national platform, and the lifespan that wires database, relay and topics."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, Field, ValidationError

from schemas.base import Frozen
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.topics import INTAKE_CERTIFICATES
from services.intake.domain import (
    InvalidCertificate,
    Problem,
    ReceiveOutcome,
    RevokeOutcome,
)
from services.intake.handlers import Clock, Intake, receive_certificate, revoke_certificate
from services.intake.settings import IntakeSettings
from services.kit.db import close_pool, create_pool, migrate
from services.kit.http import BearerGate, document_request_body, install_common
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.problems import (
    ErrorBody,
    ValidationErrorBody,
    error_response,
    problem_from_pydantic,
    problems_response,
)
from services.kit.telemetry import configure_telemetry
from services.kit.tracing import current_traceparent

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class ReceiptBody(Frozen):
    status: str = Field(description="received | already_received | revoked | already_revoked")
    certificate_id: str


class RevocationRequest(Frozen):
    """Optional details of a revocation."""

    revoked_at: AwareDatetime | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: IntakeSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    """The intake application; `settings` default to the environment."""
    settings = settings or IntakeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("intake", settings.log_level, settings.log_json)
        configure_telemetry("intake", settings)
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
        pool = await create_pool(settings.database_url, settings.db_schema, application="intake", max_size=20)
        relay = OutboxRelay(
            pool,
            lambda: make_producer(settings, client_id="intake-relay"),
            lock_name=f"{settings.db_schema}.outbox",
        )
        app.state.intake = Intake(settings=settings, pool=pool, clock=clock, on_commit=relay.notify)
        app.state.relay = relay

        async def publish() -> None:
            await ensure_topics(settings, [INTAKE_CERTIFICATES], deadline_seconds=float("inf"))
            await relay.run()

        task = asyncio.create_task(publish(), name="intake-outbox-relay") if settings.relay_enabled else None
        log.info("intake.started", host=settings.host, port=settings.port, relay=settings.relay_enabled)
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=10)
                log.info("intake.relay.stopped", done=task.done())
            await close_pool(pool)
            log.info("intake.stopped")

    app = FastAPI(
        title="Mina intyg – intake",
        version="1.0.0",
        summary="Receives issued certificates from the national service platform.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, Any]:
        # Certificates are accepted while Kafka is away (the outbox holds them), so the relay is informative.
        return await outbox_readiness(app.state.intake.pool, app.state.relay)

    install_common(app, readiness, max_body_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problems_response([problem_from_pydantic(e) for e in exc.errors()], "the certificate is invalid")

    bearer = HTTPBearer(auto_error=False, description="The national platform's credential")

    async def platform(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        """The platform that BearerGate authenticated (the bearer dependency documents the scheme)."""
        name: str = request.scope["state"]["caller"]
        return name

    responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "Missing or wrong platform credential"},
        413: {"model": ErrorBody, "description": "Body too large"},
        415: {"model": ErrorBody, "description": "Body is not JSON"},
        422: {"model": ValidationErrorBody, "description": "Invalid: every problem as {path, message}"},
    }

    @app.post(
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
    async def post_certificate(request: Request, platform_name: Annotated[str, Depends(platform)]) -> JSONResponse:
        intake: Intake = app.state.intake
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

    @app.post(
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
        certificate_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")],
        platform_name: Annotated[str, Depends(platform)],
        revocation: Annotated[RevocationRequest | None, Body()] = None,
    ) -> JSONResponse:
        intake: Intake = app.state.intake
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
                headers={"Retry-After": str(settings.revocation_retry_after_seconds)},
            )
        return JSONResponse({"status": outcome.value, "certificate_id": certificate_id})

    document_request_body(
        app, "Certificate", CERTIFICATE_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    )

    # Added last, so it runs first: no body is parsed for a caller that is not a known platform.
    app.add_middleware(BearerGate, tokens=settings.platform_tokens, path_prefix="/v1/", what="platform")
    return app
