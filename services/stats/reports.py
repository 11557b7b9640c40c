"""The reports: what each one counts, how its table is laid out, the periods offered, and JSON and CSV forms.

Counts and key sums come from the aggregates (repo.contributions); every figure is protected by the cell key
method (protection.py). A case counts in a period when it lasts at least one day of it; "certificates per type"
counts certificates signed in the period. Periods are whole calendar months, quarters or years.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas import codesystems
from schemas.base import Frozen
from schemas.certificate import COUNTY_NAMES, County
from schemas.events import ReportCell
from services.kit.db import Connection, Pool
from services.stats.domain import AGE_GROUPS, DEGREES, LENGTH_GROUPS, UNKNOWN, month_end, month_index, month_start
from services.stats.protection import MAX_NOISE, THRESHOLD, Cell, cell_salt, protect
from services.stats.repo import Contribution, contributions

SEXES = [("F", "Kvinnor"), ("M", "Män")]
SUPPRESSED_CSV = ".."

CHAPTERS = codesystems.CHAPTER_NAMES  # roman numeral → Swedish name, in the classification's order
# Every ICD-10-SE block (avsnitt): a group table lists them all, with or without cases, so that a row's presence does
# not tell that someone has a diagnosis in it.
GROUP_NAMES = codesystems.block_names()
GROUPS = [*GROUP_NAMES, UNKNOWN]


def group_label(group: str) -> str:
    """A diagnosis group's row: its block and Swedish name (`F40-F48 Neurotiska, …`)."""
    if group == UNKNOWN:
        return "Okänd"
    name = GROUP_NAMES.get(group)
    return f"{group} {name}" if name else group


CERTIFICATE_TYPE_NAMES = {
    "LISJP": "LISJP – Läkarintyg för sjukpenning",
    "FK7263": "FK7263 – Läkarintyg (äldre form)",
}


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    dimension: str  # aggregate dimension
    row_header: str
    layout: Literal["months", "rows_by_sex", "sex", "county"]
    fixed_rows: Sequence[str] | None = None  # rows shown even when empty, in this order
    row_order: Callable[[str], tuple[int, str]] | None = None
    label: Callable[[str], str] = str
    chart: Literal["line", "bar"] = "bar"


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec("cases-per-month", "Sjukfall per månad", "Pågående sjukfall varje månad, per kön.", "all",
                   "Månad", "months", chart="line"),
        ReportSpec("diagnosis-chapter", "Sjukfall per diagnoskapitel",
                   "Sjukfall efter ICD-10-kapitel för huvuddiagnosen på det senaste intyget.", "chapter",
                   "Diagnoskapitel", "rows_by_sex", fixed_rows=[*CHAPTERS, UNKNOWN],
                   label=lambda c: f"{c} {CHAPTERS[c]}" if c in CHAPTERS else "Okänd"),
        ReportSpec("diagnosis-group", "Sjukfall per diagnosgrupp",
                   "Sjukfall efter avsnitt (grupp av diagnoskoder) i ICD-10-SE för huvuddiagnosen.", "group",
                   "Diagnosgrupp", "rows_by_sex", fixed_rows=GROUPS, label=group_label),
        ReportSpec("sex", "Sjukfall per kön", "Sjukfall efter patientens kön.", "all", "Kön", "sex"),
        ReportSpec("age-group", "Sjukfall per åldersgrupp", "Sjukfall efter patientens högsta ålder i sjukfallet.",
                   "age", "Åldersgrupp", "rows_by_sex", fixed_rows=AGE_GROUPS, label=lambda a: f"{a} år"),
        ReportSpec("degree", "Sjukfall per sjukskrivningsgrad",
                   "Sjukfall efter sjukskrivningsgraden på det senaste intyget.", "degree", "Sjukskrivningsgrad",
                   "rows_by_sex", fixed_rows=DEGREES, label=lambda d: f"{d} %"),
        ReportSpec("length", "Sjukfall per längd", "Sjukfall efter längd (dagar i sjukskrivningsperioderna).",
                   "length", "Sjukfallets längd", "rows_by_sex", fixed_rows=LENGTH_GROUPS),
        ReportSpec("county", "Sjukfall per län", "Sjukfall efter vårdenhetens län, och per 1 000 invånare.", "all",
                   "Län", "county", fixed_rows=[c.value for c in County],
                   label=lambda c: COUNTY_NAMES[County(c)]),
        ReportSpec("certificate-type", "Intyg per typ",
                   "Sjukpenningintyg (LISJP och FK7263) som skrivits under i perioden, per intygstyp.", "type",
                   "Intygstyp", "rows_by_sex", fixed_rows=["LISJP", "FK7263"],
                   label=lambda t: CERTIFICATE_TYPE_NAMES.get(t, t)),
    )
}  # fmt: skip

NOTES = [
    "Ett sjukfall räknas i perioden om det pågår minst en dag i perioden; i månadsrapporten räknas det i varje "
    "månad det pågår.",
    "Alla antal är skyddade med cellnyckelmetoden (som SCB använder): varje cell har ett litet, alltid samma "
    "slumpmässigt fel (högst ±2), och summorna är summor av de skyddade cellerna.",
    "Antal under 5 redovisas inte (null / '..'); ett prickat värde kan vara 0.",
    "Perioder är hela kalendermånader, kvartal eller år. Pågående perioder är preliminära och uppdateras en gång "
    "per dygn.",
    "Källa för invånarantal: SCB, folkmängd per län 31 december 2024.",
    "Län vars invånarantal saknas i tabellen har inget värde för sjukfall per 1 000 invånare (uppgift saknas, inte 0).",
]


class Protection(Frozen):
    """How the figures are protected (public: an analyst may reason with it)."""

    method: Literal["cell-key"] = "cell-key"
    threshold: int = Field(THRESHOLD, description="Figures below this are not shown")
    max_noise: int = Field(MAX_NOISE, description="A cell's published count differs from the true one by at most this")
    totals: Literal["sum-of-protected-cells"] = "sum-of-protected-cells"


class ReportView(Frozen):
    """One report as published."""

    report: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    title: str
    description: str
    period_start: date
    period_end: date
    period: str = Field(description="The period: YYYY-MM, YYYY-Qn or YYYY")
    preliminary: bool = Field(description="The period is not closed yet: the figures may still change")
    county: str | None = Field(None, description="County filter (län code), if any")
    computed_at: AwareDatetime
    columns: list[str]
    rows: list[list[ReportCell]]
    suppressed: list[list[int]] = Field(description="[row, column] of every suppressed cell")
    chart: Literal["line", "bar"]
    notes: list[str]
    protection: Protection = Field(default_factory=Protection)


class ReportInfo(Frozen):
    name: str
    title: str
    description: str
    url: str


@dataclass(frozen=True)
class Period:
    """A whole calendar month, quarter or year (the only periods published: ad-hoc ranges could be subtracted)."""

    first_month: int
    last_month: int

    @property
    def start(self) -> date:
        return month_start(self.first_month)

    @property
    def end(self) -> date:
        return month_end(self.last_month)

    @property
    def key(self) -> str:
        start = self.start
        months = self.last_month - self.first_month + 1
        if months == 1:
            return f"{start:%Y-%m}"
        if months == 3:
            return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        return f"{start.year}"

    def closed(self, today: date, close_after_days: int) -> bool:
        """Whether the period ended at least `close_after_days` days ago (late certificates have arrived)."""
        return today > self.end + timedelta(days=close_after_days)


_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
# The years a period may lie in: no certificate intake takes was signed before 2000 (services/intake/domain.py), and
# a year far ahead is a typing error (years 0 and 9999 have no calendar month around them to compute with).
FIRST_YEAR, LAST_YEAR = 2000, 2100
PERIOD_PATTERN = r"^(20\d\d|2100)(-(0[1-9]|1[0-2])|-Q[1-4])?$"


class InvalidPeriod(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def parse_period(text: str) -> Period:
    """YYYY-MM (a month), YYYY-Qn (a quarter) or YYYY (a year)."""
    match = _PERIOD.fullmatch(text)
    if match is None:
        raise InvalidPeriod("period", "a period is a month (YYYY-MM), a quarter (YYYY-Qn) or a year (YYYY)")
    year = int(match[1])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidPeriod("period", f"the year must be from {FIRST_YEAR} to {LAST_YEAR}")
    if match[2]:
        month = year * 12 + int(match[2]) - 1
        return Period(month, month)
    if match[3]:
        first = year * 12 + (int(match[3]) - 1) * 3
        return Period(first, first + 2)
    return Period(year * 12, year * 12 + 11)


def default_period(today: date) -> Period:
    """The current calendar year (preliminary until it closes)."""
    return Period(today.year * 12, today.year * 12 + 11)


def current_periods(today: date) -> list[Period]:
    """The month, quarter and year that today lies in (the preliminary periods)."""
    month = month_index(today)
    quarter = today.year * 12 + (today.month - 1) // 3 * 3
    return [Period(month, month), Period(quarter, quarter + 2), Period(today.year * 12, today.year * 12 + 11)]


def load_population() -> dict[str, int]:
    """Inhabitants per county code ("00" = Sweden) from the shipped SCB table; counties without a figure are absent."""
    text = resources.files("services.stats").joinpath("data/population_2024.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    population = {}
    for row in csv.DictReader(lines):
        if row["folkmangd"].strip():
            population[row["lan"]] = int(row["folkmangd"])
    return population


async def compute(
    conn: Pool | Connection,
    spec: ReportSpec,
    period: Period,
    county: str | None,
    now: datetime,
    population: dict[str, int],
    *,
    preliminary: bool,
    exact: bool = False,
) -> ReportView:
    """Read the report's counts and key sums and build its protected table (`exact`: see `build`)."""
    found = await contributions(
        conn,
        spec.dimension,
        period.first_month,
        period.last_month,
        county,
        by_month=spec.layout == "months",
        by_county=spec.layout == "county",
    )
    return build(spec, found, period, county, now, population, preliminary=preliminary, exact=exact)


class _Cells:
    """Counts and key sums per (row, column); a cell's salt comes from what it counts (dimension, value, sex, its
    months and its county), so the same cell has the same figure in every report that shows it."""

    def __init__(self, rows: int, columns: int) -> None:
        self.n = [[0] * columns for _ in range(rows)]
        self.k = [[0] * columns for _ in range(rows)]

    def add(self, row: int, column: int, c: Contribution) -> None:
        self.n[row][column] += c.n
        self.k[row][column] += c.k

    def cells(self, identity: Callable[[int, int], tuple[str, str, str, int, int, str]]) -> list[list[Cell]]:
        return [
            [Cell(n, k, cell_salt(*map(str, identity(i, j)))) for j, (n, k) in enumerate(zip(ns, ks, strict=True))]
            for i, (ns, ks) in enumerate(zip(self.n, self.k, strict=True))
        ]


def build(
    spec: ReportSpec,
    found: Sequence[Contribution],
    period: Period,
    county: str | None,
    computed_at: datetime,
    population: dict[str, int],
    *,
    preliminary: bool,
    exact: bool = False,
) -> ReportView:
    """The published report from the aggregate contributions (pure). `exact=True` builds the true table instead,
    only for the benchmark's measure of the protection's cost; it is never published.

    A cell's figure depends only on its records (their count and keys), so the same cell gets the same protected
    figure in every report, period and filter it appears in."""
    sex_column = {code: i for i, (code, _) in enumerate(SEXES)}
    sexes = [code for code, _ in SEXES]
    dim, first, last, area = spec.dimension, period.first_month, period.last_month, county or ""
    if spec.layout == "months":
        months = list(range(period.first_month, period.last_month + 1))
        labels = [f"{month_start(m):%Y-%m}" for m in months]
        table = _Cells(len(months), len(SEXES))
        for c in found:
            for m in range(max(c.first_month, period.first_month), min(c.last_month, period.last_month) + 1):
                table.add(m - period.first_month, sex_column[c.sex], c)
        cells = table.cells(lambda i, j: (dim, "", sexes[j], months[i], months[i], area))
        published = protect(cells, total_row=False, total_column=True, exact=exact)
        columns = [spec.row_header, *[name for _, name in SEXES], "Totalt"]
        keys = labels
    elif spec.layout == "sex":
        labels = [name for _, name in SEXES]
        table = _Cells(len(SEXES), 1)
        for c in found:
            table.add(sex_column[c.sex], 0, c)
        cells = table.cells(lambda i, _j: (dim, "", sexes[i], first, last, area))
        published = protect(cells, total_row=True, total_column=False, exact=exact)
        labels.append("Totalt")
        columns = [spec.row_header, "Sjukfall"]
        keys = labels
    else:
        present = {c.value for c in found}
        if spec.fixed_rows is not None:
            keys = list(spec.fixed_rows)
            keys += sorted(present - set(keys))
        else:
            keys = sorted(present, key=spec.row_order) if spec.row_order else sorted(present)
        row_of = {k: i for i, k in enumerate(keys)}
        table = _Cells(len(keys), len(SEXES))
        for c in found:
            table.add(row_of[c.value], sex_column[c.sex], c)
        if spec.layout == "county":  # a county's row is the cell of that county's filtered tables
            cells = table.cells(lambda i, j: (dim, "", sexes[j], first, last, keys[i]))
        else:
            cells = table.cells(lambda i, j: (dim, keys[i], sexes[j], first, last, area))
        published = protect(cells, total_row=True, total_column=True, exact=exact)
        labels = [spec.label(k) for k in keys] + ["Riket" if spec.layout == "county" else "Totalt"]
        columns = [spec.row_header, *[name for _, name in SEXES], "Totalt"]
        if spec.layout == "county":
            keys = [*keys, "00"]
    rows: list[list[ReportCell]] = [[label, *row] for label, row in zip(labels, published.cells, strict=True)]
    suppressed = sorted([i, j + 1] for i, j in published.suppressed)
    if spec.layout == "county":
        columns += ["Invånare", "Sjukfall per 1 000 invånare"]
        total_column = 1 + len(SEXES)
        for i, key in enumerate(keys):
            inhabitants = population.get(key)
            total = rows[i][total_column]
            per_thousand: float | None = None
            if inhabitants and isinstance(total, int):
                per_thousand = round(total * 1000 / inhabitants, 2)
            rows[i] += [inhabitants, per_thousand]
            if total is None:
                suppressed.append([i, len(columns) - 1])  # the rate would give the hidden total back
        suppressed.sort()
    return ReportView(
        report=spec.name,
        title=spec.title,
        description=spec.description,
        period_start=period.start,
        period_end=period.end,
        period=period.key,
        preliminary=preliminary,
        county=county,
        computed_at=computed_at,
        columns=columns,
        rows=rows,
        suppressed=suppressed,
        chart=spec.chart,
        notes=NOTES,
    )


def to_csv(report: ReportView) -> str:
    """The report's table as CSV; suppressed cells are '..', cells without data empty."""
    suppressed = {(i, j) for i, j in report.suppressed}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns)
    for i, row in enumerate(report.rows):
        writer.writerow(
            [SUPPRESSED_CSV if (i, j) in suppressed else ("" if v is None else v) for j, v in enumerate(row)]
        )
    return out.getvalue()
