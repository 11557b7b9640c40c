"""Statistics: the report API and the Swedish dashboard (wired by `bootstrap.py`: the ingest consumers, the feed
publisher and the relay; run by the kit's service host)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
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

from schemas.certificate import County
from services.kit.problems import Problem, error_response, problem_from_pydantic, problems_response
from services.kit.service import service_app, state_dependency
from services.kit.swedish import fmt_time, month_short, swedish_period
from services.stats import repo
from services.stats.access import Unauthorized
from services.stats.bootstrap import Stats, bootstrap
from services.stats.feed import policy_of
from services.stats.publication import NotReady, published
from services.stats.repo import MIGRATIONS
from services.stats.reports import (
    FIRST_YEAR,
    LAST_YEAR,
    PERIOD_PATTERN,
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
    # The form is checked here, the years by parse_period (naming what is wrong); the document has the exact rule.
    Query(
        pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$",
        description=f"YYYY-MM, YYYY-Qn or YYYY, from {FIRST_YEAR} to {LAST_YEAR} (default: this year)",
        json_schema_extra={"pattern": PERIOD_PATTERN},
    ),
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


def analyst_of(request: Request, stats: StatsState) -> str:
    """The signed-in analyst organisation (access.py), or 401 / 429."""
    return stats.access.analyst(request.headers.get("authorization"))


Analyst = Annotated[str, Depends(analyst_of)]
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
# What a person reads on the dashboard is Swedish time and Swedish month names (services/kit/swedish.py).
TEMPLATES.env.filters.update(sv_time=fmt_time, sv_period=swedish_period)


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problems_response([problem_from_pydantic(e) for e in exc.errors()])


async def invalid_period(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidPeriod)
    return problems_response([Problem(exc.path, str(exc))])


async def unknown_report(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownReport)
    return error_response(404, f"no report named {exc.name!r}; the reports are: {', '.join(REPORTS)}")


async def unauthorized(_request: Request, _exc: Exception) -> JSONResponse:
    response = error_response(401, "an analyst credential is required (Authorization: Bearer …)")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def not_ready(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotReady)
    response = error_response(503, str(exc))
    response.headers["Retry-After"] = "60"
    return response


async def audit(
    stats: Stats, analyst: str, path: str, name: str, period: str | None, county: County | None, status: int
) -> None:
    try:
        await repo.audit(stats.pool, analyst, path, name, period, county.value if county else None, status)
    except Exception:  # the answer is given; a lost audit row must at least be seen
        log.exception("stats.audit.failed", analyst=analyst, path=path, status=status)


async def report_json(stats: Stats, name: str, period_text: str | None, county: County | None) -> str:
    """The published table (publication.py: stored, protected, whole periods, county only where allowed)."""
    spec = REPORTS.get(name)
    if spec is None:
        raise UnknownReport(name)
    now = stats.clock()
    period = parse_period(period_text) if period_text else default_period(now.date())
    started = time.perf_counter()
    body = await published(stats.pool, spec, period, county.value if county else None, now, stats.population,
                           policy_of(stats.settings), stats.published)  # fmt: skip
    REPORT_SECONDS.labels(name).observe(time.perf_counter() - started)
    return body


@router.get(
    "/v1/reports",
    response_model=list[ReportInfo],
    summary="The reports",
    tags=["reports"],
    responses={
        401: {"description": "No analyst credential"},
        429: {"description": "Too many queries for this credential (see Retry-After)"},
    },
)
async def list_reports(_analyst: Analyst) -> list[ReportInfo]:
    return [ReportInfo(name=s.name, title=s.title, description=s.description, url=f"/v1/reports/{s.name}")
            for s in REPORTS.values()]  # fmt: skip


@router.get(
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
    stats: StatsState,
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
        body = await report_json(stats, name, period, county)
        status = 200
    except (InvalidPeriod, RequestValidationError):
        status = 422
        raise
    except UnknownReport:
        status = 404
        raise
    finally:
        stats.audit_later(audit(stats, analyst, request.url.path, name, period, county, status))
    if format != "csv":
        return Response(body, media_type="application/json")
    report = ReportView.model_validate_json(body)
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


# --- dashboard ------------------------------------------------------------------------------------


def _axis_label(label: object) -> object:
    """A month row (`2026-03`) as the chart's axis shows it (`mar 2026`); other labels as they are."""
    if isinstance(label, str) and len(label) == 7 and label[4] == "-" and label[:4].isdigit() and label[5:].isdigit():
        return month_short(int(label[:4]), int(label[5:]))
    return label


def chart_data(report: ReportView) -> dict[str, Any]:
    """The chart's series, with Swedish axis titles and month names."""
    body = [r for r in report.rows if r[0] not in ("Totalt", "Riket")]
    x = [_axis_label(r[0]) for r in body]
    axes = {"x_title": report.columns[0], "y_title": "Antal sjukfall"}
    if report.columns[1] == "Sjukfall":  # one column: the rows are the series' points
        return {"type": report.chart, "x": x, **axes, "series": [
            {"name": "Sjukfall", "y": [r[1] for r in body]}]}  # fmt: skip
    return {
        "type": report.chart,
        "x": x,
        **axes,
        "series": [{"name": name, "y": [r[1 + k] for r in body]} for k, (_, name) in enumerate(SEXES)],
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "index.html", {"reports": list(REPORTS.values())})


@router.get("/rapporter/{name}", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_report(
    request: Request, stats: StatsState, name: ReportName, period: PeriodParam = None
) -> HTMLResponse:
    # The public dashboard: the protected national tables only (no county filter, no credential).
    report = ReportView.model_validate_json(await report_json(stats, name, period, None))
    context = {
        "report": report,
        "reports": list(REPORTS.values()),
        "chart": chart_data(report),
        "suppressed": {(i, j) for i, j in report.suppressed},
        "query": {"period": report.period},
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
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(NotReady, not_ready)
    app.include_router(router)
    return app
