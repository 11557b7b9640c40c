"""The cell key method (services/stats/protection.py) and the protected reports built with it (reports.build):
properties over random populations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats.protection import (
    KEY_SPACE,
    MAX_NOISE,
    THRESHOLD,
    Cell,
    cell_salt,
    perturb,
    possible_counts,
    protect,
)
from services.stats.repo import Contribution
from services.stats.reports import REPORTS, Period, ReportView, build

NOW = datetime(2027, 6, 1, tzinfo=UTC)
YEAR = Period(2026 * 12, 2026 * 12 + 11)
MONTHS = [Period(m, m) for m in range(2026 * 12, 2026 * 12 + 12)]
QUARTERS = [Period(2026 * 12 + q * 3, 2026 * 12 + q * 3 + 2) for q in range(4)]


def test_small_counts_are_never_published_as_they_are() -> None:
    for count in range(1, THRESHOLD):
        outcomes = {perturb(count, key) for key in range(0, KEY_SPACE, KEY_SPACE // 1000)}
        assert count not in outcomes
        assert len(outcomes) == 2
    assert {perturb(0, key) for key in range(0, KEY_SPACE, KEY_SPACE // 1000)} == {0}


@given(st.integers(0, 10_000), st.integers(0, KEY_SPACE - 1))
def test_the_noise_is_bounded_and_every_published_value_has_several_possible_true_counts(count: int, key: int) -> None:
    published = perturb(count, key)
    assert abs(published - count) <= MAX_NOISE
    assert published >= 0
    assert count in possible_counts(published)
    assert len(possible_counts(published)) >= 2  # no figure tells its true count


def test_large_counts_have_the_documented_noise_distribution() -> None:
    keys = range(0, KEY_SPACE, KEY_SPACE // 10_000)
    shares = {d: sum(perturb(100, k) - 100 == d for k in keys) / len(keys) for d in range(-2, 3)}
    assert [round(shares[d], 2) for d in range(-2, 3)] == [0.1, 0.2, 0.4, 0.2, 0.1]


@given(st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(0, KEY_SPACE - 1)), min_size=2, max_size=2),
                min_size=1, max_size=8), st.booleans())  # fmt: skip
def test_totals_are_sums_of_the_shown_protected_cells_and_no_figure_below_five_is_shown(
    raw: list[list[tuple[int, int]]], total_row: bool
) -> None:
    table = protect([[Cell(n, k) for n, k in row] for row in raw], total_row=total_row, total_column=True)
    shown = [[v or 0 for v in row] for row in table.cells]
    for i, row in enumerate(table.cells):
        # a total minus the shown cells is 0: the relations of a table give back nothing hidden
        assert (row[-1] or 0) == sum(shown[i][:-1])
        for j, value in enumerate(row):
            assert value is None or value >= THRESHOLD
            assert (value is None) == (table.values[i][j] < THRESHOLD)
            if i < len(raw) and j < 2 and 0 < raw[i][j][0] < THRESHOLD:
                assert value != raw[i][j][0]
    if total_row:
        inner = shown[: len(raw)]
        assert shown[-1] == [sum(r[j] for r in inner) for j in range(3)]


# --- reports over random populations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    sex: str
    chapter: str
    degree: str
    county: str
    first: int
    last: int
    key: int


cases = st.builds(
    Case,
    st.sampled_from(["F", "M"]),
    st.sampled_from(["V", "XIII", "X"]),
    st.sampled_from(["25", "50", "100"]),
    st.sampled_from(["01", "03", "14"]),
    st.integers(2026 * 12, 2026 * 12 + 11),
    st.integers(0, 2),
    st.integers(0, KEY_SPACE - 1),
).map(lambda c: Case(c.sex, c.chapter, c.degree, c.county, c.first, min(c.first + c.last, 2026 * 12 + 11), c.key))


def contributions(population: list[Case], dimension: str, period: Period, county: str | None, *, by_month: bool,
                  by_county: bool) -> list[Contribution]:  # fmt: skip
    """What repo.contributions reads from the aggregates of these cases."""
    groups: dict[tuple[str, int, int, str], list[int]] = {}
    for c in population:
        if c.first > period.last_month or c.last < period.first_month or (county and c.county != county):
            continue
        value = c.county if by_county else {"all": "", "chapter": c.chapter, "degree": c.degree}[dimension]
        months = (c.first, c.last) if by_month else (0, 0)
        entry = groups.setdefault((value, *months, c.sex), [0, 0])
        entry[0] += 1
        entry[1] += c.key
    return [Contribution(v, f, la, s, n, k) for (v, f, la, s), (n, k) in groups.items()]


def report(population: list[Case], name: str, period: Period, county: str | None = None) -> ReportView:
    spec = REPORTS[name]
    found = contributions(population, spec.dimension, period, county, by_month=spec.layout == "months",
                          by_county=spec.layout == "county")  # fmt: skip
    return build(spec, found, period, county, NOW, {}, preliminary=False)


def true_count(population: list[Case], period: Period, **where: str) -> int:
    return sum(
        1
        for c in population
        if c.first <= period.last_month and c.last >= period.first_month
        and all(getattr(c, k) == v for k, v in where.items())
    )  # fmt: skip


def figures(view: ReportView) -> list[int | None]:
    return [count(cell) for row in view.rows for cell in row[1:] if not isinstance(cell, str | float)]


def count(cell: object) -> int | None:
    """A count cell (int, or None when hidden)."""
    assert cell is None or isinstance(cell, int)
    return cell


def counts(row: Sequence[object]) -> list[int | None]:
    return [count(c) for c in row[1:3]]


def label(row: Sequence[object]) -> str:
    assert isinstance(row[0], str)
    return row[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(cases, max_size=40))
def test_for_random_populations_no_published_combination_gives_a_small_count_exactly(population: list[Case]) -> None:
    views: dict[tuple[str, str, str | None], ReportView] = {}
    for period in [YEAR, *QUARTERS, *MONTHS[:3]]:
        for report_name in ("sex", "diagnosis-chapter", "degree", "county", "cases-per-month"):
            views[(report_name, period.key, None)] = report(population, report_name, period)
            for county in ("01", "03"):
                views[(report_name, period.key, county)] = report(population, report_name, period, county)
    for view in views.values():
        for value in figures(view):
            assert value is None or value >= THRESHOLD  # nothing small is shown, zeros included
    # A table's relations give nothing hidden (a total is the sum of the shown cells, test above). Across tables,
    # the same cell has the same figure, so asking another report or filter for it gives nothing new:
    for period in [YEAR, *QUARTERS, *MONTHS[:3]]:
        sex = views[("sex", period.key, None)]
        by_county = views[("county", period.key, None)]
        for county_code, name in (("01", "Stockholms län"), ("03", "Uppsala län")):
            filtered = views[("sex", period.key, county_code)]
            row = next(r for r in by_county.rows if r[0] == name)
            assert [count(filtered.rows[0][1]), count(filtered.rows[1][1])] == counts(row)
        if period.first_month == period.last_month:
            months = views[("cases-per-month", YEAR.key, None)]
            month_row = months.rows[period.first_month - YEAR.first_month]
            assert counts(month_row) == [count(sex.rows[0][1]), count(sex.rows[1][1])]
        # the issue's attack: a sex figure minus the shown chapter cells of that sex leaves the hidden cells' sum
        # to within the noise of every figure used, never exactly
        chapters = views[("diagnosis-chapter", period.key, None)]
        for column, sex_code in ((1, "F"), (2, "M")):
            total = count(sex.rows[column - 1][1])
            if total is None:
                continue
            shown = sum(count(r[column]) or 0 for r in chapters.rows[:-1])
            hidden_true = sum(
                true_count(population, period, sex=sex_code, chapter=label(r).split(" ")[0])
                for r in chapters.rows[:-1] if r[column] is None
            )  # fmt: skip
            inferred = total - shown
            # The analyst's interval for the hidden cells' sum: the published figures move by at most ±2 each.
            spread = MAX_NOISE * (1 + sum(isinstance(r[column], int) for r in chapters.rows[:-1]))
            candidates = [v for v in range(inferred - spread, inferred + spread + 1) if v >= 0]
            assert hidden_true in candidates
            assert len(candidates) > 1  # several values remain: the hidden sum is not recovered
            assert count(chapters.rows[-1][column]) in (None, shown)  # the chapter total: the shown cells' sum


@settings(max_examples=40, deadline=None)
@given(st.lists(cases, min_size=1, max_size=30), st.integers(0, KEY_SPACE - 1))
def test_a_new_case_changes_only_the_cells_it_joins_so_preliminary_releases_wait_for_many_changes(
    population: list[Case], key: int
) -> None:
    newcomer = Case("F", "V", "100", "01", YEAR.first_month, YEAR.first_month, key)
    before = report(population, "diagnosis-chapter", YEAR)
    after = report([*population, newcomer], "diagnosis-chapter", YEAR)
    for b, a in zip(before.rows, after.rows, strict=True):
        assert b[2] == a[2]  # men's cells: the same records, the same figures (consistency)
        if not label(b).startswith(("V ", "Totalt")):
            assert b[1] == a[1]
    for view in (before, after):
        assert all(v is None or v >= THRESHOLD for v in figures(view))


def test_the_same_records_in_two_different_cells_get_unrelated_noise() -> None:
    """A month and its quarter with no case after the month hold the same records but are other cells: their keys
    differ, so an unchanged figure never tells that the quarter's later months added nobody."""
    population = [Case("F", "V", "100", "01", QUARTERS[0].first_month, QUARTERS[0].first_month, k * 7919)
                  for k in range(40)]  # fmt: skip
    month, quarter = report(population, "sex", MONTHS[0]), report(population, "sex", QUARTERS[0])
    key_sum = sum(c.key for c in population)
    month_key = key_sum + cell_salt("all", "", "F", str(MONTHS[0].first_month), str(MONTHS[0].last_month), "")
    quarter_key = key_sum + cell_salt("all", "", "F", str(QUARTERS[0].first_month), str(QUARTERS[0].last_month), "")
    assert month_key % KEY_SPACE != quarter_key % KEY_SPACE
    assert month.rows[0][1] == perturb(40, month_key)
    assert quarter.rows[0][1] == perturb(40, quarter_key)
