"""Periods statistics once answered 500 for (years 0000 and 9999): each report, the CSV and the dashboard now answer
422 naming the period (issue 17, part 6); and a failure that still happens answers 500 with the correlation id and
the security headers, logged with the service, correlation and trace ids."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI

from services.stats.reports import REPORTS
from services.stats.settings import StatsSettings
from tests.integration.stats.conftest import ANALYST, StatsService, running

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("period", ["0000", "9999", "0000-01", "9999-12", "9999-Q4", "1999", "2101-01"])
async def test_a_period_outside_the_years_is_refused_in_every_form(stats: StatsService, period: str) -> None:
    for name in REPORTS:
        for params in ({"period": period}, {"period": period, "format": "csv"}):
            response = await stats.client.get(f"/v1/reports/{name}", params=params, headers=ANALYST)
            assert response.status_code == 422, (name, params, response.text)
            assert response.json()["problems"] == [{"path": "period", "message": "the year must be from 2000 to 2100"}]
    dashboard = await stats.client.get(f"/rapporter/{next(iter(REPORTS))}", params={"period": period})
    assert dashboard.status_code == 422, dashboard.text
    assert dashboard.headers["content-security-policy"]


async def test_a_failure_is_a_500_with_correlation_id_security_headers_and_a_log_line(
    stats_settings: StatsSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stats_settings.model_copy(update={"log_json": True})
    try:
        await _fail_and_look(settings, capsys)
    finally:
        logging.getLogger().handlers[:] = []  # the service's handler writes to capsys' stream, closed after the test


async def _fail_and_look(settings: StatsSettings, capsys: pytest.CaptureFixture[str]) -> None:
    async with running(settings) as service:
        app: FastAPI = service.app

        @app.get("/boom", include_in_schema=False)
        async def boom() -> None:
            raise RuntimeError("the route failed")

        capsys.readouterr()
        trace = "00-5e2a1c0ffee0ddba11c0ffee0ddba11e-1234567890abcdef-01"
        response = await service.client.get("/boom", headers={"X-Correlation-ID": "corr-boom", "traceparent": trace})
        assert response.status_code == 500
        assert response.headers["x-correlation-id"] == "corr-boom"
        assert response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "correlation" in response.json()["detail"].lower()
        assert "the route failed" not in response.text
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        failed = [line for line in lines if line.get("event") == "http.request.failed"]
        assert len(failed) == 1, lines
        assert failed[0]["service"] == "stats"
        assert failed[0]["correlation_id"] == "corr-boom"
        assert failed[0]["trace_id"] == "5e2a1c0ffee0ddba11c0ffee0ddba11e"
        assert failed[0]["route"] == "/boom"
        assert "RuntimeError" in failed[0]["exception"]
