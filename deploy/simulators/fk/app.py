"""The Försäkringskassan simulator's HTTP API: receive certificates and revocations, answer what was received.

`/v1/` is what a sender (dispatch) uses and needs a bearer credential; `/sim/` is for operators and tests and sets
the faults of `faults.py`. Everything received is kept in PostgreSQL, in the simulator's own schema.
"""

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter
from pydantic import Field, TypeAdapter, ValidationError
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from deploy.simulators.fk import riv, store
from deploy.simulators.fk.bootstrap import FaultCounts, FkSim, bootstrap
from deploy.simulators.fk.faults import Clock, FaultConfig, FaultInjector, FaultKind, FaultMiddleware
from deploy.simulators.fk.riv import FK_TYPES
from deploy.simulators.fk.settings import FksimSettings
from schemas.base import Frozen
from schemas.certificate import CERTIFICATE_ADAPTER, Certificate, CertificateId
from services.kit.http import BearerGate, document_request_body
from services.kit.problems import (
    ErrorBody,
    Problem,
    ValidationErrorBody,
    error_response,
    problem_from_pydantic,
    problems_response,
)
from services.kit.service import add_first, add_routes, app_state, service_app, state_dependency

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


RECEIVED = Counter("fksim_received_total", "Writes received by the FK simulator", ["kind", "outcome"])

SenderName = Annotated[str, Field(min_length=1, max_length=100, description="Who sends, e.g. minaintyg")]
IdempotencyKey = Annotated[
    UUID,
    Header(
        alias="Idempotency-Key",
        description="A UUID per thing sent; retries reuse it, and the same key again gets the same answer",
    ),
]


# --- API models ------------------------------------------------------------------------------------------


class Submission(Frozen):
    """What a sender posts to /v1/intyg."""

    certificate: Certificate
    sender: SenderName


class _SubmissionEnvelope(Frozen):
    # The certificate is validated in a second step, so a type FK does not take gets its own clear answer.
    certificate: dict[str, Any]
    sender: SenderName


class ReceiptBody(Frozen):
    receipt_id: UUID
    certificate_id: str
    received_at: datetime


class StoredReceipt(Frozen):
    seq: int = Field(description="Order of arrival; the cursor of /v1/received")
    receipt_id: UUID
    idempotency_key: UUID
    certificate_id: str
    certificate_type: str
    sender: str
    received_at: datetime
    body: dict[str, Any] | None = Field(None, description="The request body as received (include_body=true)")


class ReceivedPage(Frozen):
    items: list[StoredReceipt]
    next_after: int = Field(description="Pass as `after` for the next page; an empty page means nothing newer yet")


class RevocationRequest(Frozen):
    """Optional details of a revocation."""

    sender: SenderName | None = Field(None, description="Defaults to the authenticated sender")
    reason: Annotated[str, Field(max_length=500)] | None = None


class RevocationBody(Frozen):
    status: Literal["revoked", "already_revoked"]
    revocation_id: UUID
    idempotency_key: UUID
    certificate_id: str
    sender: str
    reason: str | None
    received_at: datetime


class StatsBody(Frozen):
    received: int = Field(description="Receipts stored (one per idempotency key)")
    distinct_certificates: int = Field(description="Certificates received at least once")
    duplicates_by_key: int = Field(description="Requests that repeated an idempotency key (answered, not stored)")
    revocations: int
    faults_injected_by_kind: dict[str, int]


def _utc_now() -> datetime:
    return datetime.now(UTC)


router = APIRouter()
Sim = Annotated[FkSim, Depends(state_dependency(FkSim))]


async def receive_intyg(sim: FkSim, idempotency_key: UUID, sender_name: str, body: bytes) -> Response:
    """POST /v1/intyg, for the route and for its fast path (`IntygFastPath`)."""
    try:
        # One pass over the JSON for a good submission; a bad one is examined again below for a precise answer.
        submission = Submission.model_validate_json(body)
    except ValidationError as exc:
        return _invalid_submission(body, exc)
    certificate = submission.certificate
    if certificate.type not in FK_TYPES:
        return problems_response(
            [_type_problem()], f"Försäkringskassan does not take certificates of type {certificate.type!r}"
        )
    now = sim.clock()
    receipt = await sim.writer.insert(
        store.NewReceipt(
            idempotency_key=idempotency_key,
            certificate_id=certificate.id,
            certificate_type=certificate.type,
            sender=submission.sender,
            caller=sender_name,
            body=body.decode(),
            received_at=now,
        )
    )
    if receipt is not None:
        outcome = store.ReceiveOutcome.STORED
    else:  # the key was used before: the first receipt answers, or the key is refused for another certificate
        outcome, receipt = await store.receive(
            sim.pool, idempotency_key=idempotency_key, certificate_id=certificate.id,
            certificate_type=certificate.type, sender=submission.sender, caller=sender_name,
            body=body.decode(), now=now,
        )  # fmt: skip
    RECEIVED.labels("intyg", outcome.value).inc()
    log.info(
        "fksim.intyg.received",
        certificate_id=certificate.id,
        sender=submission.sender,
        outcome=outcome.value,
    )
    if outcome is store.ReceiveOutcome.KEY_CONFLICT:
        return error_response(
            409,
            f"Idempotency-Key {idempotency_key} was already used for certificate {receipt.certificate_id}",
        )
    answer = ReceiptBody(
        receipt_id=receipt.receipt_id, certificate_id=receipt.certificate_id, received_at=receipt.received_at
    )
    status = 201 if outcome is store.ReceiveOutcome.STORED else 200
    return Response(answer.model_dump_json(), status_code=status, media_type="application/json")


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(tuple(e.get("loc", ()))[:1] == ("header",) for e in errors):
        return error_response(400, _BAD_KEY)
    return problems_response([problem_from_pydantic(e) for e in errors])


bearer = HTTPBearer(auto_error=False, description="The sender's credential")


async def caller(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    """The sender that BearerGate authenticated (the bearer dependency documents the scheme)."""
    name: str = request.scope["state"]["caller"]
    return name


common: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Idempotency-Key missing or not a UUID"},
    401: {"model": ErrorBody, "description": "Missing or wrong sender credential"},
    503: {"model": ErrorBody, "description": "Unavailable (injected error or planned downtime, see Retry-After)"},
}
reads: dict[int | str, dict[str, Any]] = {
    401: common[401],
    422: {"model": ValidationErrorBody, "description": "Invalid path or query parameter"},
    503: {"model": ErrorBody, "description": "Planned downtime, see Retry-After"},
}


@router.post(
    "/v1/intyg",
    status_code=201,
    response_model=ReceiptBody,
    tags=["intyg"],
    summary="Send one certificate to Försäkringskassan",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}},
        }
    },
    responses={
        200: {"model": ReceiptBody, "description": "Same Idempotency-Key again: the first receipt, not stored"},
        409: {"model": ErrorBody, "description": "Idempotency-Key already used for another certificate"},
        422: {"model": ValidationErrorBody, "description": "Invalid, or a type Försäkringskassan does not take"},
        504: {"model": ErrorBody, "description": "Injected timeout (nothing stored)"},
        **common,
    },
)
async def post_intyg(
    sim: Sim,
    request: Request,
    idempotency_key: IdempotencyKey,
    sender_name: Annotated[str, Depends(caller)],
) -> Response:
    return await receive_intyg(sim, idempotency_key, sender_name, await request.body())


@router.get(
    "/v1/intyg/{certificate_id}/receipts",
    response_model=list[StoredReceipt],
    tags=["intyg"],
    summary="Did Försäkringskassan receive this certificate? Every receipt of it, oldest first",
    responses=reads,
)
async def get_receipts(
    sim: Sim,
    certificate_id: CertificateId,
    _sender: Annotated[str, Depends(caller)],
    idempotency_key: Annotated[UUID | None, Query(description="Only the receipt of this key")] = None,
) -> list[StoredReceipt]:
    receipts = await store.receipts_for(sim.pool, certificate_id, idempotency_key)
    return [_stored_receipt(r) for r in receipts]


@router.post(
    "/v1/intyg/{certificate_id}/revocation",
    status_code=201,
    response_model=RevocationBody,
    tags=["intyg"],
    summary="Revoke a certificate Försäkringskassan received",
    responses={
        200: {"model": RevocationBody, "description": "Already revoked: the first revocation"},
        404: {"model": ErrorBody, "description": "Försäkringskassan never received this certificate"},
        409: {"model": ErrorBody, "description": "Idempotency-Key already used for another certificate"},
        422: {"model": ValidationErrorBody, "description": "Invalid request"},
        504: {"model": ErrorBody, "description": "Injected timeout (nothing stored)"},
        **common,
    },
)
async def post_revocation(
    sim: Sim,
    certificate_id: CertificateId,
    idempotency_key: IdempotencyKey,
    sender_name: Annotated[str, Depends(caller)],
    revocation: Annotated[RevocationRequest | None, Body()] = None,
) -> JSONResponse:
    sender = (revocation.sender if revocation else None) or sender_name
    outcome, stored = await store.revoke(
        sim.pool,
        idempotency_key=idempotency_key,
        certificate_id=certificate_id,
        sender=sender,
        caller=sender_name,
        reason=revocation.reason if revocation else None,
        now=sim.clock(),
    )
    RECEIVED.labels("revocation", outcome.value).inc()
    log.info("fksim.revocation.received", certificate_id=certificate_id, sender=sender, outcome=outcome.value)
    if outcome is store.RevokeOutcome.UNKNOWN_CERTIFICATE or stored is None:
        return error_response(404, f"Försäkringskassan never received certificate {certificate_id}")
    if outcome is store.RevokeOutcome.KEY_CONFLICT:
        return error_response(
            409, f"Idempotency-Key {idempotency_key} was already used for certificate {stored.certificate_id}"
        )
    first = outcome is store.RevokeOutcome.REVOKED
    answer = _revocation_body(stored, "revoked" if first else "already_revoked")
    return JSONResponse(answer.model_dump(mode="json"), status_code=201 if first else 200)


@router.get(
    "/v1/intyg/{certificate_id}/revocation",
    response_model=RevocationBody,
    tags=["intyg"],
    summary="Did Försäkringskassan receive a revocation of this certificate?",
    responses={404: {"model": ErrorBody, "description": "No revocation received"}, **reads},
)
async def get_revocation(
    sim: Sim, certificate_id: CertificateId, _sender: Annotated[str, Depends(caller)]
) -> RevocationBody | JSONResponse:
    stored = await store.revocation_for(sim.pool, certificate_id)
    if stored is None:
        return error_response(404, f"no revocation of certificate {certificate_id} was received")
    return _revocation_body(stored, "revoked")


@router.get(
    "/v1/received",
    response_model=ReceivedPage,
    tags=["intyg"],
    summary="Everything received, in order of arrival",
    responses=reads,
)
async def get_received(
    sim: Sim,
    _sender: Annotated[str, Depends(caller)],
    after: Annotated[int, Query(ge=0, description="Only receipts with a larger seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_body: Annotated[bool, Query(description="Include the request bodies as received")] = False,
) -> ReceivedPage:
    receipts = await store.received_page(sim.pool, after=after, limit=limit, with_body=include_body)
    return ReceivedPage(
        items=[_stored_receipt(r) for r in receipts],
        next_after=receipts[-1].seq if receipts else after,
    )


@router.get("/sim/faults", response_model=FaultConfig, tags=["simulator"], summary="The faults now injected")
async def get_faults(sim: Sim) -> FaultConfig:
    return sim.injector.config


@router.put(
    "/sim/faults",
    response_model=FaultConfig,
    tags=["simulator"],
    summary="Set the faults to inject (replaces the whole configuration; {} switches them all off)",
)
async def put_faults(sim: Sim, config: FaultConfig) -> FaultConfig:
    sim.injector.configure(config)
    log.info("fksim.faults.configured", **config.model_dump(mode="json"))
    return sim.injector.config


@router.delete(
    "/sim/received",
    status_code=204,
    tags=["simulator"],
    summary="Forget everything received, and the fault counts (demos)",
)
async def delete_received(sim: Sim) -> Response:
    await store.reset(sim.pool)
    log.info("fksim.store.reset")
    return Response(status_code=204)


@router.get("/sim/stats", response_model=StatsBody, tags=["simulator"], summary="What was received, counted")
async def get_stats(sim: Sim) -> StatsBody:
    await sim.counts.flush(sim.pool)
    stats = await store.stats(sim.pool)
    faults = {kind.value: 0 for kind in FaultKind} | stats.faults_injected_by_kind
    return StatsBody(
        received=stats.received,
        distinct_certificates=stats.distinct_certificates,
        duplicates_by_key=stats.duplicates_by_key,
        revocations=stats.revocations,
        faults_injected_by_kind=faults,
    )


def create_app(settings: FksimSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    """The simulator application; `settings` default to the environment."""
    settings = settings or FksimSettings()
    counts = FaultCounts()
    injector = FaultInjector(clock, counts.on_fault)
    app = service_app(
        "fk-sim",
        settings,
        functools.partial(bootstrap, settings=settings, clock=clock, injector=injector, counts=counts),
        migrations=MIGRATIONS,
        log_name="fksim",
        title="Försäkringskassan simulator",
        summary="Receives certificates like Försäkringskassan would, and fails on demand.",
        max_body_bytes=settings.max_body_bytes,
        # Innermost: after authentication and the body limit, right before the routes. The fast path serves POST
        # /v1/intyg (the route documents it) without FastAPI's routing and dependency resolution, which cost more
        # CPU than the rest of the request.
        inner_middleware=[
            Middleware(IntygFastPath, handle=receive_intyg, routes=router.routes),
            Middleware(FaultMiddleware, injector=injector, riv_error=riv.technical_error),
        ],
    )
    app.add_exception_handler(RequestValidationError, invalid_request)
    add_routes(app, router)
    add_first(app, riv.ROUTES)
    document_request_body(app, "Submission", Submission.model_json_schema(ref_template="#/components/schemas/{model}"))
    # Added last, so it runs first: nothing is read, and no fault injected, for a caller that is not a known sender.
    app.add_middleware(BearerGate, tokens=settings.sender_tokens, path_prefix="/v1/", what="sender")
    return app


_UUID: TypeAdapter[UUID] = TypeAdapter(UUID)
_BAD_KEY = "the Idempotency-Key header is required and must be a UUID"


class IntygFastPath:
    """Serves POST /v1/intyg straight from ASGI with the route's own handler: the same answers, without FastAPI's
    routing, dependency resolution and exception middlewares (BearerGate has authenticated the caller)."""

    def __init__(
        self, app: ASGIApp, handle: Callable[[FkSim, UUID, str, bytes], Awaitable[Response]], routes: list[BaseRoute]
    ) -> None:
        self.app = app
        self.handle = handle
        self.routes = routes
        self.route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/intyg":
            await self.app(scope, receive, send)
            return
        if self.route is None:
            self.route = next(r for r in self.routes if getattr(r, "path", None) == "/v1/intyg")
        scope["route"] = self.route  # the latency metric is labelled by route
        response: Response
        presented = dict(scope["headers"]).get(b"idempotency-key")
        try:
            key = _UUID.validate_python(presented.decode("latin-1") if presented is not None else None)
        except ValidationError:
            response = error_response(400, _BAD_KEY)
        else:
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            sim = app_state(scope["app"], FkSim)
            response = await self.handle(sim, key, scope["state"]["caller"], b"".join(chunks))
        await response(scope, receive, send)


def _invalid_submission(body: bytes, error: ValidationError) -> JSONResponse:
    """The answer to a submission that did not validate: the envelope's problems, a type Försäkringskassan does not
    take (whether or not that certificate is valid), or the certificate's problems."""
    try:
        envelope = _SubmissionEnvelope.model_validate_json(body)
    except ValidationError as exc:
        return problems_response([problem_from_pydantic(e) for e in exc.errors()])
    cert_type = envelope.certificate.get("type")
    if cert_type not in FK_TYPES:
        shown = repr(cert_type) if isinstance(cert_type, str) else "missing"
        return problems_response([_type_problem()], f"Försäkringskassan does not take certificates of type {shown}")
    try:
        # Validated from JSON (not from the dict), so the rules are exactly those intake applies.
        CERTIFICATE_ADAPTER.validate_json(orjson.dumps(envelope.certificate))
    except ValidationError as exc:
        return problems_response(
            [problem_from_pydantic(e, prefix="certificate") for e in exc.errors()], "the certificate is invalid"
        )
    return problems_response([problem_from_pydantic(e) for e in error.errors()])


def _stored_receipt(receipt: store.Receipt) -> StoredReceipt:
    return StoredReceipt(
        seq=receipt.seq,
        receipt_id=receipt.receipt_id,
        idempotency_key=receipt.idempotency_key,
        certificate_id=receipt.certificate_id,
        certificate_type=receipt.certificate_type,
        sender=receipt.sender,
        received_at=receipt.received_at,
        body=receipt.body,
    )


def _revocation_body(revocation: store.Revocation, status: Literal["revoked", "already_revoked"]) -> RevocationBody:
    return RevocationBody(
        status=status,
        revocation_id=revocation.revocation_id,
        idempotency_key=revocation.idempotency_key,
        certificate_id=revocation.certificate_id,
        sender=revocation.sender,
        reason=revocation.reason,
        received_at=revocation.received_at,
    )


def _type_problem() -> Problem:
    taken = ", ".join(sorted(FK_TYPES))
    return Problem("certificate.type", f"Försäkringskassan takes {taken}")
