"""Statistics: the report API and the Swedish dashboard (wired by `bootstrap.py`: the ingest consumers, the feed
publisher and the relay; run by the kit's service host)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.certificate import COUNTY_NAMES, County
from services.kit.problems import Problem, error_response, problem_from_pydantic, problems_response
from services.kit.service import service_app, state_dependency
from services.stats.bootstrap import Stats, bootstrap
from services.stats.repo import MIGRATIONS
from services.stats.reports import (
    MAX_MONTHS,
    REPORTS,
    SEXES,
    Period,
    ReportInfo,
    ReportView,
    compute,
    default_period,
    load_population,
    to_csv,
)
from services.stats.settings import StatsSettings

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
REPORT_SECONDS = Histogram(
    "stats_report_seconds", "Time to compute a report", ["report"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
)
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="Month, YYYY-MM")]
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


class InvalidPeriod(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def parse_period(first: str | None, last: str | None, today: date) -> Period:
    """The period of the from/to parameters (YYYY-MM), defaulting to the twelve months up to this one."""
    default = default_period(today)
    first_month = _month(first) if first else None
    last_month = _month(last) if last else default.last_month
    if first_month is None:
        first_month = last_month - 11
    if first_month > last_month:
        raise InvalidPeriod("from", "must not be after 'to'")
    if last_month - first_month + 1 > MAX_MONTHS:
        raise InvalidPeriod("to", f"the period may cover at most {MAX_MONTHS} months")
    return Period(first_month, last_month)


def _month(text: str) -> int:
    return int(text[:4]) * 12 + int(text[5:7]) - 1


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


router = APIRouter()
StatsState = Annotated[Stats, Depends(state_dependency(Stats))]
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problems_response([problem_from_pydantic(e) for e in exc.errors()])


async def invalid_period(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidPeriod)
    return problems_response([Problem(exc.path, str(exc))])


async def unknown_report(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownReport)
    return error_response(404, f"no report named {exc.name!r}; the reports are: {', '.join(REPORTS)}")


async def report_of(stats: Stats, name: str, first: str | None, last: str | None, county: County | None) -> ReportView:
    spec = REPORTS.get(name)
    if spec is None:
        raise UnknownReport(name)
    now = stats.clock()
    period = parse_period(first, last, now.date())
    key = (name, period.first_month, period.last_month, county.value if county else None)
    if (cached := stats.cache.get(key)) is not None:
        return cached
    version = stats.cache.version
    started = time.perf_counter()
    report = await compute(stats.pool, spec, period, county.value if county else None, now, stats.population)
    REPORT_SECONDS.labels(name).observe(time.perf_counter() - started)
    stats.cache.put(key, version, report)
    return report


@router.get("/v1/reports", response_model=list[ReportInfo], summary="The reports", tags=["reports"])
async def list_reports() -> list[ReportInfo]:
    return [ReportInfo(name=s.name, title=s.title, description=s.description, url=f"/v1/reports/{s.name}")
            for s in REPORTS.values()]  # fmt: skip


@router.get(
    "/v1/reports/{name}",
    response_model=ReportView,
    summary="One report (JSON, or CSV with ?format=csv)",
    tags=["reports"],
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        404: {"description": "No such report"},
        422: {"description": "Invalid filter"},
    },
)
async def get_report(
    stats: StatsState,
    name: ReportName,
    first: Annotated[Month | None, Query(alias="from", description="First month (YYYY-MM)")] = None,
    last: Annotated[Month | None, Query(alias="to", description="Last month (YYYY-MM), default this month")] = None,
    county: Annotated[County | None, Query(description="Only this county (län code, e.g. 01)")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
) -> Any:
    report = await report_of(stats, name, first, last, county)
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
    # Serialised directly: the model is already validated (FastAPI would validate it again per request).
    return Response(report.model_dump_json(), media_type="application/json")


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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "index.html", {"reports": list(REPORTS.values())})


@router.get("/rapporter/{name}", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_report(
    request: Request,
    stats: StatsState,
    name: ReportName,
    first: Annotated[Month | None, Query(alias="from")] = None,
    last: Annotated[Month | None, Query(alias="to")] = None,
    county: Annotated[County | None, Query()] = None,
) -> HTMLResponse:
    report = await report_of(stats, name, first, last, county)
    query = {"from": f"{report.period_start:%Y-%m}", "to": f"{report.period_end:%Y-%m}"}
    if county:
        query["county"] = county.value
    context = {
        "report": report,
        "reports": list(REPORTS.values()),
        "chart": chart_data(report),
        "suppressed": {(i, j) for i, j in report.suppressed},
        "query": query,
        "counties": [(c.value, COUNTY_NAMES[c]) for c in County],
        "county_name": COUNTY_NAMES[county] if county else None,
    }
    return TEMPLATES.TemplateResponse(request, "report.html", context)


plotly_js = resources.files("plotly").joinpath("package_data/plotly.min.js")


@router.get("/static/plotly.min.js", include_in_schema=False)
async def plotly_script() -> FileResponse:
    return FileResponse(str(plotly_js), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/{asset}", include_in_schema=False)
async def static_asset(asset: Literal["dashboard.js", "dashboard.css"]) -> FileResponse:
    media = "text/javascript" if asset.endswith(".js") else "text/css"
    return FileResponse(str(HERE / "static" / asset), media_type=media)


def create_app(settings: StatsSettings | None = None, clock: Callable[[], datetime] = _utc_now) -> FastAPI:
    settings = settings or StatsSettings()
    app = service_app(
        "stats",
        settings,
        functools.partial(bootstrap, settings=settings, clock=clock, population=load_population()),
        migrations=MIGRATIONS,
        title="Mina intyg – statistik",
        summary="Anonymised sick-leave statistics: reports, the analysts' feed and a dashboard.",
        max_body_bytes=16 * 1024,
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(InvalidPeriod, invalid_period)
    app.add_exception_handler(UnknownReport, unknown_report)
    app.include_router(router)
    return app
