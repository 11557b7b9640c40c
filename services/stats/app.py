"""Statistics: the ingest (consumer), the feed publisher and relay, the report API and the Swedish dashboard."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.certificate import County
from schemas.topics import CONSENT_RELEASED, STATS_SICKLEAVE, dead_letter
from services.kit.consumer import IdempotentConsumer
from services.kit.db import close_pool, create_pool, migrate
from services.kit.http import install_common
from services.kit.kafka import ensure_topics, make_producer
from services.kit.logging import configure_logging
from services.kit.outbox import OutboxRelay, outbox_readiness
from services.kit.problems import Problem, error_response, problem_from_pydantic, problems_response
from services.kit.tasks import after, stop_all, supervise
from services.stats import repo
from services.stats.access import Access, RateLimited, Unauthorized
from services.stats.feed import FeedPublisher, policy_of
from services.stats.handlers import Ingest, on_batch, on_event
from services.stats.publication import Cache, NotReady, published
from services.stats.rebuild import CONSUMER_NAME
from services.stats.released import decode_released
from services.stats.repo import MIGRATIONS
from services.stats.reports import (
    REPORTS,
    SEXES,
    InvalidPeriod,
    ReportInfo,
    ReportView,
    default_period,
    load_population,
    parse_period,
    to_csv,
)
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
REPORT_SECONDS = Histogram(
    "stats_report_seconds", "Time to compute a report", ["report"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
)
PeriodParam = Annotated[
    str | None,
    Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$", description="YYYY-MM, YYYY-Qn or YYYY (default: this year)"),
]
ReportName = Annotated[
    str,
    PathParam(description="A report name from GET /v1/reports", json_schema_extra={"enum": list(REPORTS)}),
]
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def analyst_of(request: Request) -> str:
    """The signed-in analyst organisation (access.py), or 401 / 429."""
    access: Access = request.app.state.access
    return access.analyst(request.headers.get("authorization"))


Analyst = Annotated[str, Depends(analyst_of)]


class UnknownReport(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name[:60] if name.isprintable() else "?"


class SecurityHeaders:
    """Headers for every answer: the dashboard's content policy (scripts only from this service) and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
            await send(message)

        # FastAPI's /docs and /redoc load their assets from a CDN: the dashboard's policy would break them.
        ours = scope["type"] == "http" and not scope["path"].startswith(("/docs", "/redoc"))
        await self.app(scope, receive, send_with_headers if ours else send)


def create_app(settings: StatsSettings | None = None, clock: Callable[[], datetime] = _utc_now) -> FastAPI:
    settings = settings or StatsSettings()
    population = load_population()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    access = Access(settings)
    published_cache = Cache(preliminary_seconds=min(5.0, settings.publish_interval_seconds / 2))
    audits: set[asyncio.Task[None]] = set()  # written after the answer; awaited before the pool closes
    ingest = Ingest(pseudonym_key=settings.pseudonym_key.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("stats", settings.log_level, settings.log_json)
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
        pool = await create_pool(settings.database_url, settings.db_schema, application="stats", max_size=20)
        relay = OutboxRelay(
            pool, lambda: make_producer(settings, client_id="stats-relay"), lock_name=f"{settings.db_schema}.outbox"
        )
        publisher = FeedPublisher(pool, settings, population, clock, relay.notify)
        # Several consumers of the one group: while one waits for PostgreSQL, another decodes and merges its batch
        # (the ingest's wall time was half Python, half SQL, one after the other). A person's events are all in
        # one partition, so consumers never touch the same facts or cases; the aggregates, which all batches
        # change, are locked in key order and only at the end of each transaction.
        consumers = [
            IdempotentConsumer(
                settings,
                pool,
                name=CONSUMER_NAME,
                topics=[CONSENT_RELEASED],
                handler=functools.partial(on_event, ingest),
                batch_handler=functools.partial(on_batch, ingest),
                max_records=settings.max_records,
                one_transaction_per_fetch=True,
                decoder=decode_released,
            )
            for _ in range(settings.ingest_consumers)
        ]
        app.state.pool, app.state.relay, app.state.consumers = pool, relay, consumers

        async def topics() -> None:
            await ensure_topics(settings, [CONSENT_RELEASED, STATS_SICKLEAVE, dead_letter(CONSENT_RELEASED)],
                                deadline_seconds=float("inf"))  # fmt: skip

        async def consume(consumer: IdempotentConsumer) -> None:
            while await repo.rebuild_in_progress(pool):  # the operator's rebuild owns the tables until it is done
                log.warning("stats.ingest.waiting_for_rebuild")
                await asyncio.sleep(5)
            await consumer.run()

        tasks = []
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(supervise("relay", after(topics, relay.run))))
        if settings.consumer_enabled:
            # One supervised task per consumer: each restarts on its own, and on shutdown `stop_all` waits until
            # every one has left the group (a rebuild started right after a stop finds the group empty).
            tasks += [
                asyncio.create_task(supervise(f"ingest-{i}", after(topics, functools.partial(consume, consumer))))
                for i, consumer in enumerate(consumers)
            ]
        if settings.publisher_enabled:
            tasks.append(asyncio.create_task(supervise("feed", publisher.run)))
        log.info("stats.started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            await stop_all(tasks)
            await asyncio.gather(*audits, return_exceptions=True)
            await close_pool(pool)
            log.info("stats.stopped")

    app = FastAPI(
        title="Mina intyg – statistik",
        version="1.0.0",
        summary="Anonymised sick-leave statistics: reports, the analysts' feed and a dashboard.",
        lifespan=lifespan,
    )
    app.state.access = access

    async def readiness() -> dict[str, Any]:
        checks: dict[str, Any] = await outbox_readiness(app.state.pool, app.state.relay)
        checks["ingest"] = {"ok": any(c.assigned for c in app.state.consumers), "required": False}
        return checks

    install_common(app, readiness, max_body_bytes=16 * 1024)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problems_response([problem_from_pydantic(e) for e in exc.errors()])

    @app.exception_handler(InvalidPeriod)
    async def invalid_period(_request: Request, exc: InvalidPeriod) -> JSONResponse:
        return problems_response([Problem(exc.path, str(exc))])

    @app.exception_handler(UnknownReport)
    async def unknown_report(_request: Request, exc: UnknownReport) -> JSONResponse:
        return error_response(404, f"no report named {exc.name!r}; the reports are: {', '.join(REPORTS)}")

    @app.exception_handler(Unauthorized)
    async def unauthorized(_request: Request, _exc: Unauthorized) -> JSONResponse:
        response = error_response(401, "an analyst credential is required (Authorization: Bearer …)")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(NotReady)
    async def not_ready(_request: Request, exc: NotReady) -> JSONResponse:
        response = error_response(503, str(exc))
        response.headers["Retry-After"] = "60"
        return response

    @app.exception_handler(RateLimited)
    async def rate_limited(_request: Request, exc: RateLimited) -> JSONResponse:
        response = error_response(429, "too many queries for this credential")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def audit(analyst: str, path: str, name: str, period: str | None, county: County | None, status: int) -> None:
        try:
            await repo.audit(app.state.pool, analyst, path, name, period, county.value if county else None, status)
        except Exception:  # the answer is given; a lost audit row must at least be seen
            log.exception("stats.audit.failed", analyst=analyst, path=path, status=status)

    async def report_json(name: str, period_text: str | None, county: County | None) -> str:
        """The published table (publication.py: stored, protected, whole periods, county only where allowed)."""
        spec = REPORTS.get(name)
        if spec is None:
            raise UnknownReport(name)
        now = clock()
        period = parse_period(period_text) if period_text else default_period(now.date())
        started = time.perf_counter()
        body = await published(app.state.pool, spec, period, county.value if county else None, now, population,
                               policy_of(settings), published_cache)  # fmt: skip
        REPORT_SECONDS.labels(name).observe(time.perf_counter() - started)
        return body

    @app.get("/v1/reports", response_model=list[ReportInfo], summary="The reports", tags=["reports"])
    async def list_reports(_analyst: Analyst) -> list[ReportInfo]:
        return [ReportInfo(name=s.name, title=s.title, description=s.description, url=f"/v1/reports/{s.name}")
                for s in REPORTS.values()]  # fmt: skip

    @app.get(
        "/v1/reports/{name}",
        response_model=ReportView,
        summary="One report (JSON, or CSV with ?format=csv)",
        tags=["reports"],
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            401: {"description": "No analyst credential"},
            404: {"description": "No such report"},
            422: {"description": "Invalid period or filter (or a county with too few cases)"},
            429: {"description": "Too many queries for this credential (see Retry-After)"},
        },
    )
    async def get_report(
        request: Request,
        name: ReportName,
        analyst: Analyst,
        period: PeriodParam = None,
        county: Annotated[County | None, Query(description="Only this county (län code, e.g. 01)")] = None,
        format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
        # from/to are refused: ad-hoc ranges could be subtracted from each other
        first: Annotated[str | None, Query(alias="from", include_in_schema=False)] = None,
        last: Annotated[str | None, Query(alias="to", include_in_schema=False)] = None,
    ) -> Any:
        status = 500
        try:
            if first is not None or last is not None:
                raise InvalidPeriod("from" if first else "to", "ad-hoc ranges are not offered: period=YYYY-MM, "
                                    "YYYY-Qn or YYYY")  # fmt: skip
            body = await report_json(name, period, county)
            status = 200
        except (InvalidPeriod, RequestValidationError):
            status = 422
            raise
        except UnknownReport:
            status = 404
            raise
        finally:
            task = asyncio.create_task(audit(analyst, request.url.path, name, period, county, status))
            audits.add(task)
            task.add_done_callback(audits.discard)
        if format != "csv":
            return Response(body, media_type="application/json")
        report = ReportView.model_validate_json(body)
        if format == "csv":
            filename = f"{report.report}_{report.period_start:%Y-%m}_{report.period_end:%Y-%m}.csv"
            return Response(
                to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="{filename}"',
                    "X-Report-Period": f"{report.period_start}/{report.period_end}",
                    "X-Report-Computed-At": report.computed_at.isoformat(),
                },
            )
        return Response(body, media_type="application/json")

    # --- dashboard ------------------------------------------------------------------------------------

    def chart_data(report: ReportView) -> dict[str, Any]:
        body = [r for r in report.rows if r[0] not in ("Totalt", "Riket")]
        if report.columns[1] == "Sjukfall":  # one column: the rows are the series' points
            return {"type": report.chart, "x": [r[0] for r in body], "series": [
                {"name": "Sjukfall", "y": [r[1] for r in body]}]}  # fmt: skip
        return {
            "type": report.chart,
            "x": [r[0] for r in body],
            "series": [{"name": name, "y": [r[1 + k] for r in body]} for k, (_, name) in enumerate(SEXES)],
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "index.html", {"reports": list(REPORTS.values())})

    @app.get("/rapporter/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_report(request: Request, name: ReportName, period: PeriodParam = None) -> HTMLResponse:
        # The public dashboard: the protected national tables only (no county filter, no credential).
        report = ReportView.model_validate_json(await report_json(name, period, None))
        query = {"period": report.period}
        context = {
            "report": report,
            "reports": list(REPORTS.values()),
            "chart": chart_data(report),
            "suppressed": {(i, j) for i, j in report.suppressed},
            "query": query,
        }
        return templates.TemplateResponse(request, "report.html", context)

    plotly_js = resources.files("plotly").joinpath("package_data/plotly.min.js")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_script() -> FileResponse:
        return FileResponse(str(plotly_js), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/{asset}", include_in_schema=False)
    async def static_asset(asset: Literal["dashboard.js", "dashboard.css"]) -> FileResponse:
        media = "text/javascript" if asset.endswith(".js") else "text/css"
        return FileResponse(str(HERE / "static" / asset), media_type=media)

    return app
