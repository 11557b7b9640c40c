"""The shipped population table: every county, SCB's figures only, and no rate where a figure is missing."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.certificate import County
from services.stats.repo import Contribution
from services.stats.reports import REPORTS, Period, build, load_population


def test_every_county_has_a_row_and_the_figures_fit_the_country() -> None:
    population = load_population()
    assert population["00"] == 10_587_710  # Riket, 31 December 2024
    assert set(population) - {"00"} <= {c.value for c in County}
    counties = [n for code, n in population.items() if code != "00"]
    assert all(n > 50_000 for n in counties)
    assert sum(counties) < population["00"]


def test_a_county_without_a_figure_has_no_rate_not_zero() -> None:
    population = {"00": 10_587_710, "01": 2_473_307}
    spec = REPORTS["county"]
    contributions = [Contribution(county, 0, 0, sex, 80, 12345) for county in ("01", "03") for sex in ("F", "M")]
    report = build(spec, contributions, Period(24300, 24311), None, datetime.now(UTC), population,
                   preliminary=False)  # fmt: skip
    rows = {row[0]: row for row in report.rows}
    stockholm, uppsala = rows["Stockholms län"], rows["Uppsala län"]
    assert stockholm[-2] == 2_473_307
    assert isinstance(stockholm[3], int)
    assert abs(stockholm[3] - 160) <= 4  # protected: at most ±2 per cell
    assert stockholm[-1] == round(stockholm[3] * 1000 / 2_473_307, 2)  # the rate of the protected total
    assert isinstance(uppsala[3], int)  # counted ...
    assert uppsala[-2] is None  # ... but no inhabitants,
    assert uppsala[-1] is None  # so no rate (null in JSON, empty in CSV), never 0
