"""Consent's internal API for the portal (wired by `bootstrap.py`, run by the kit's service host)."""

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from services.consent import repo
from services.consent.bootstrap import bootstrap
from services.consent.domain import UnknownTextVersion
from services.consent.handlers import Clock, Gate, give_consent, withdraw_consent
from services.consent.settings import ConsentSettings
from services.kit.http import BearerGate
from services.kit.problems import Problem, problem_from_pydantic, problems_response
from services.kit.service import service_app, state_dependency

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
CitizenRef = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 citizen ref")]
Channel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class GiveRequest(Frozen):
    text_version: Annotated[str, Field(min_length=1, max_length=32)]
    channel: Channel = "portal"


class WithdrawRequest(Frozen):
    channel: Channel = "portal"


class HistoryEntry(Frozen):
    action: Literal["given", "withdrawn"]
    text_version: str
    channel: str
    at: AwareDatetime


class ConsentView(Frozen):
    citizen_ref: str
    state: Literal["none", "given", "withdrawn"]
    text_version: str | None
    changed_at: AwareDatetime | None
    current_text_version: str
    history: list[HistoryEntry]
    generation: int = Field(0, description="The citizen's consent generation (one more at every change)")
    held_retention_days: int = Field(description="How long certificates are held for a citizen without consent")
    held_purged_at: AwareDatetime | None = Field(
        None, description="When held certificates of the citizen were last removed after the retention"
    )


class GiveResult(Frozen):
    outcome: Literal["given", "already_given"]
    released: int = Field(description="Held certificates released by this consent")


class WithdrawResult(Frozen):
    outcome: Literal["withdrawn", "not_given"]
    generation: int = Field(0, description="The citizen's consent generation after the withdrawal")


def _utc_now() -> datetime:
    return datetime.now(UTC)


router = APIRouter()
GateState = Annotated[Gate, Depends(state_dependency(Gate))]

base = "/internal/v1/citizens/{citizen_ref}/consent"
auth_responses: dict[int | str, dict[str, Any]] = {401: {"description": "Missing or wrong service credential"}}


@router.get(base, response_model=ConsentView, summary="Current consent and its history", responses=auth_responses)
async def get_consent(gate: GateState, citizen_ref: CitizenRef) -> ConsentView:
    citizen = await repo.get_citizen(gate.pool, citizen_ref)
    entries = await repo.history(gate.pool, citizen_ref) if citizen else []
    return ConsentView(
        citizen_ref=citizen_ref,
        state=citizen.consent.value if citizen else "none",
        text_version=citizen.text_version if citizen else None,
        changed_at=citizen.changed_at if citizen else None,
        current_text_version=gate.settings.current_text_version,
        generation=citizen.generation if citizen else 0,
        held_retention_days=gate.settings.held_retention_days,
        held_purged_at=citizen.held_purged_at if citizen else None,
        history=[HistoryEntry(action=h.action, text_version=h.text_version, channel=h.channel, at=h.at)  # type: ignore[arg-type]
                 for h in entries],
    )  # fmt: skip


@router.post(
    base,
    response_model=GiveResult,
    summary="Give consent (releases held certificates)",
    responses={**auth_responses, 422: {"description": "Unknown or outdated consent text version"}},
)
async def post_consent(request: Request, gate: GateState, citizen_ref: CitizenRef, body: GiveRequest) -> Any:
    try:
        outcome, released = await give_consent(
            gate,
            citizen_ref,
            text_version=body.text_version,
            channel=body.channel,
            correlation_id=request.scope["state"]["correlation_id"],
        )
    except UnknownTextVersion as exc:
        return problems_response([Problem("text_version", str(exc))], str(exc))
    return GiveResult(outcome=outcome.value, released=released)


@router.post(
    f"{base}/withdrawal",
    response_model=WithdrawResult,
    summary="Withdraw consent (the citizen's data leaves every service)",
    responses=auth_responses,
)
async def post_withdrawal(
    request: Request, gate: GateState, citizen_ref: CitizenRef, body: Annotated[WithdrawRequest | None, Body()] = None
) -> WithdrawResult:
    outcome = await withdraw_consent(
        gate,
        citizen_ref,
        channel=(body or WithdrawRequest()).channel,
        correlation_id=request.scope["state"]["correlation_id"],
    )
    citizen = await repo.get_citizen(gate.pool, citizen_ref)
    return WithdrawResult(outcome=outcome.value, generation=citizen.generation if citizen else 0)


def create_app(settings: ConsentSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or ConsentSettings()
    app = service_app(
        "consent",
        settings,
        functools.partial(bootstrap, settings=settings, clock=clock),
        migrations=MIGRATIONS,
        title="Mina intyg – consent",
        summary="Samtycke: the citizen's consent, and the gate in front of everything their data feeds.",
        max_body_bytes=16 * 1024,
    )
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.include_router(router)
    app.add_middleware(BearerGate, tokens=settings.service_tokens, path_prefix="/internal/", what="service")
    return app


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problems_response([problem_from_pydantic(e) for e in exc.errors()])
