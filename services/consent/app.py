"""Consent's internal API for the portal, and the lifespan that runs the gate (consumer), relay and retention."""

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import Body, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Gauge
from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from schemas.topics import CONSENT_EVENTS, CONSENT_RELEASED, INTAKE_CERTIFICATES, dead_letter
from services.consent import repo
from services.consent.domain import UnknownTextVersion
from services.consent.handlers import Clock, Gate, give_consent, on_intake_batch, on_intake_event, withdraw_consent
from services.consent.settings import ConsentSettings
from services.kit.consumer import IdempotentConsumer
from services.kit.db import close_pool, create_pool, migrate
from services.kit.http import BearerGate, install_common
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.problems import Problem, problem_from_pydantic, problems_response
from services.kit.tasks import after, stop_all, supervise
from services.kit.telemetry import configure_telemetry

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
HELD_NOW = Gauge("consent_held_now", "Certificates held behind the gate now")
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


class GiveResult(Frozen):
    outcome: Literal["given", "already_given"]
    released: int = Field(description="Held certificates released by this consent")


class WithdrawResult(Frozen):
    outcome: Literal["withdrawn", "not_given"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: ConsentSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or ConsentSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("consent", settings.log_level, settings.log_json)
        configure_telemetry("consent", settings)
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
        pool = await create_pool(settings.database_url, settings.db_schema, application="consent", max_size=20)
        relay = OutboxRelay(
            pool, lambda: make_producer(settings, client_id="consent-relay"), lock_name=f"{settings.db_schema}.outbox"
        )
        gate = Gate(settings=settings, pool=pool, clock=clock, on_commit=relay.notify)
        consumer = IdempotentConsumer(
            settings,
            pool,
            name="consent-gate",
            topics=[INTAKE_CERTIFICATES],
            handler=functools.partial(on_intake_event, gate),
            batch_handler=functools.partial(on_intake_batch, gate),
            max_records=2000,
            on_commit=relay.notify,
        )
        app.state.gate, app.state.relay, app.state.consumer = gate, relay, consumer

        async def topics() -> None:
            await ensure_topics(
                settings, [INTAKE_CERTIFICATES, CONSENT_EVENTS, CONSENT_RELEASED, dead_letter(INTAKE_CERTIFICATES)],
                deadline_seconds=float("inf"),
            )  # fmt: skip

        async def purge() -> None:
            while True:
                before = clock() - timedelta(days=settings.held_retention_days)
                purged = await repo.purge_expired_held(pool, before)
                if purged:
                    log.info("consent.held.purged", count=purged, held_since_before=before.isoformat())
                await asyncio.sleep(settings.purge_interval_seconds)

        async def gauges() -> None:
            while True:
                HELD_NOW.set(await repo.held_count(pool))
                await asyncio.sleep(15)

        tasks = [asyncio.create_task(supervise("purge", purge)), asyncio.create_task(supervise("gauges", gauges))]
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(supervise("relay", after(topics, relay.run))))
        if settings.consumer_enabled:
            tasks.append(asyncio.create_task(supervise("gate", after(topics, consumer.run))))
        log.info("consent.started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            await stop_all(tasks)
            await close_pool(pool)
            log.info("consent.stopped")

    app = FastAPI(
        title="Mina intyg – consent",
        version="1.0.0",
        summary="Samtycke: the citizen's consent, and the gate in front of everything their data feeds.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, Any]:
        checks: dict[str, Any] = await outbox_readiness(app.state.gate.pool, app.state.relay)
        checks["gate"] = {"ok": app.state.consumer.assigned, "required": False}
        return checks

    install_common(app, readiness, max_body_bytes=16 * 1024)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problems_response([problem_from_pydantic(e) for e in exc.errors()])

    base = "/internal/v1/citizens/{citizen_ref}/consent"
    auth_responses: dict[int | str, dict[str, Any]] = {401: {"description": "Missing or wrong service credential"}}

    @app.get(base, response_model=ConsentView, summary="Current consent and its history", responses=auth_responses)
    async def get_consent(citizen_ref: CitizenRef) -> ConsentView:
        gate: Gate = app.state.gate
        citizen = await repo.get_citizen(gate.pool, citizen_ref)
        entries = await repo.history(gate.pool, citizen_ref) if citizen else []
        return ConsentView(
            citizen_ref=citizen_ref,
            state=citizen.consent.value if citizen else "none",
            text_version=citizen.text_version if citizen else None,
            changed_at=citizen.changed_at if citizen else None,
            current_text_version=settings.current_text_version,
            history=[HistoryEntry(action=h.action, text_version=h.text_version, channel=h.channel, at=h.at)  # type: ignore[arg-type]
                     for h in entries],
        )  # fmt: skip

    @app.post(
        base,
        response_model=GiveResult,
        summary="Give consent (releases held certificates)",
        responses={**auth_responses, 422: {"description": "Unknown or outdated consent text version"}},
    )
    async def post_consent(request: Request, citizen_ref: CitizenRef, body: GiveRequest) -> Any:
        try:
            outcome, released = await give_consent(
                app.state.gate,
                citizen_ref,
                text_version=body.text_version,
                channel=body.channel,
                correlation_id=request.scope["state"]["correlation_id"],
            )
        except UnknownTextVersion as exc:
            return problems_response([Problem("text_version", str(exc))], str(exc))
        return GiveResult(outcome=outcome.value, released=released)

    @app.post(
        f"{base}/withdrawal",
        response_model=WithdrawResult,
        summary="Withdraw consent (the citizen's data leaves every service)",
        responses=auth_responses,
    )
    async def post_withdrawal(
        request: Request, citizen_ref: CitizenRef, body: Annotated[WithdrawRequest | None, Body()] = None
    ) -> WithdrawResult:
        outcome = await withdraw_consent(
            app.state.gate,
            citizen_ref,
            channel=(body or WithdrawRequest()).channel,
            correlation_id=request.scope["state"]["correlation_id"],
        )
        return WithdrawResult(outcome=outcome.value)

    app.add_middleware(BearerGate, tokens=settings.service_tokens, path_prefix="/internal/", what="service")
    return app
