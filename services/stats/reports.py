"""The reports: what each one counts, how its table is laid out, and its JSON and CSV forms.

Counts come from the aggregates (repo.contributions); the care-provider cutoff and the suppression are the pure
rules of domain.py. A case counts in a period when it lasts at least one day of it; "certificates per type"
counts certificates signed in the period.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas.base import Frozen
from schemas.certificate import COUNTY_NAMES, County
from schemas.events import ReportCell
from services.kit.db import Pool
from services.stats.domain import (
    AGE_GROUPS,
    DEGREES,
    LENGTH_GROUPS,
    UNKNOWN,
    month_end,
    month_index,
    month_start,
    provider_cutoff,
    suppress,
)
from services.stats.repo import Contribution, contributions

SEXES = [("F", "Kvinnor"), ("M", "Män")]
SUPPRESSED_CSV = ".."
MAX_MONTHS = 120

CHAPTERS = {
    "I": "Vissa infektionssjukdomar och parasitsjukdomar",
    "II": "Tumörer",
    "III": "Sjukdomar i blod och blodbildande organ samt vissa rubbningar i immunsystemet",
    "IV": "Endokrina sjukdomar, nutritionsrubbningar och ämnesomsättningssjukdomar",
    "V": "Psykiska sjukdomar och syndrom samt beteendestörningar",
    "VI": "Sjukdomar i nervsystemet",
    "VII": "Sjukdomar i ögat och närliggande organ",
    "VIII": "Sjukdomar i örat och mastoidutskottet",
    "IX": "Cirkulationsorganens sjukdomar",
    "X": "Andningsorganens sjukdomar",
    "XI": "Matsmältningsorganens sjukdomar",
    "XII": "Hudens och underhudens sjukdomar",
    "XIII": "Sjukdomar i muskuloskeletala systemet och bindväven",
    "XIV": "Sjukdomar i urin- och könsorganen",
    "XV": "Graviditet, förlossning och barnsängstid",
    "XVI": "Vissa perinatala tillstånd",
    "XVII": "Medfödda missbildningar, deformiteter och kromosomavvikelser",
    "XVIII": "Symtom, sjukdomstecken och onormala fynd som ej klassificeras på annan plats",
    "XIX": "Skador, förgiftningar och vissa andra följder av yttre orsaker",
    "XX": "Yttre orsaker till sjukdom och död",
    "XXI": "Faktorer av betydelse för hälsotillståndet och för kontakter med hälso- och sjukvården",
    "XXII": "Koder för särskilda ändamål",
}
CERTIFICATE_TYPE_NAMES = {
    "LISJP": "LISJP – Läkarintyg för sjukpenning",
    "FK7263": "FK7263 – Läkarintyg (äldre form)",
    "AG7804": "AG7804 – Läkarintyg om arbetsförmåga – arbetsgivaren",
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


def _roman(chapter: str) -> tuple[int, str]:
    order = list(CHAPTERS)
    return (order.index(chapter) if chapter in order else len(order), chapter)


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec("cases-per-month", "Sjukfall per månad", "Pågående sjukfall varje månad, per kön.", "all",
                   "Månad", "months", chart="line"),
        ReportSpec("diagnosis-chapter", "Sjukfall per diagnoskapitel",
                   "Sjukfall efter ICD-10-kapitel för huvuddiagnosen på det senaste intyget.", "chapter",
                   "Diagnoskapitel", "rows_by_sex", row_order=_roman,
                   label=lambda c: f"{c} {CHAPTERS[c]}" if c in CHAPTERS else "Okänd"),
        ReportSpec("diagnosis-group", "Sjukfall per diagnosgrupp",
                   "Sjukfall efter avsnitt (grupp av diagnoskoder) i ICD-10 för huvuddiagnosen.", "group",
                   "Diagnosgrupp", "rows_by_sex", label=lambda g: "Okänd" if g == UNKNOWN else g),
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
                   "Intyg som skrivits under i perioden, per intygstyp (alla intyg som lämnats ut med samtycke, "
                   "också AG7804 som inte ingår i sjukfallen).", "type", "Intygstyp", "rows_by_sex",
                   label=lambda t: CERTIFICATE_TYPE_NAMES.get(t, t)),
    )
}  # fmt: skip

NOTES = [
    "Ett sjukfall räknas i perioden om det pågår minst en dag i perioden; i månadsrapporten räknas det i varje "
    "månad det pågår.",
    "Antal under 5 per vårdgivare och kön räknas inte med innan summeringen.",
    "Celler med färre än 5 och celler som annars kunde räknas fram ur summorna redovisas inte (null / '..').",
    "Källa för invånarantal: SCB, folkmängd per län 31 december 2024.",
    "Län vars invånarantal saknas i tabellen har inget värde för sjukfall per 1 000 invånare (uppgift saknas, inte 0).",
]


class ReportView(Frozen):
    """One report as published."""

    report: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    title: str
    description: str
    period_start: date
    period_end: date
    county: str | None = Field(None, description="County filter (län code), if any")
    computed_at: AwareDatetime
    columns: list[str]
    rows: list[list[ReportCell]]
    suppressed: list[list[int]] = Field(description="[row, column] of every suppressed cell")
    chart: Literal["line", "bar"]
    notes: list[str]


class ReportInfo(Frozen):
    name: str
    title: str
    description: str
    url: str


@dataclass(frozen=True)
class Period:
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
        return f"{self.start:%Y-%m}..{self.end:%Y-%m}"


def default_period(today: date) -> Period:
    """The twelve months up to and including the current one."""
    last = month_index(today)
    return Period(last - 11, last)


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
    pool: Pool, spec: ReportSpec, period: Period, county: str | None, now: datetime, population: dict[str, int]
) -> ReportView:
    """Read the report's counts and build it."""
    found = await contributions(
        pool,
        spec.dimension,
        period.first_month,
        period.last_month,
        county,
        by_month=spec.layout == "months",
        by_county=spec.layout == "county",
    )
    return build(spec, found, period, county, now, population)


def build(
    spec: ReportSpec,
    found: Sequence[Contribution],
    period: Period,
    county: str | None,
    computed_at: datetime,
    population: dict[str, int],
) -> ReportView:
    """The published report from the aggregate contributions (pure)."""
    sex_column = {code: i for i, (code, _) in enumerate(SEXES)}
    if spec.layout == "months":
        keys = [f"{month_start(m):%Y-%m}" for m in range(period.first_month, period.last_month + 1)]
        cells = [
            (m - period.first_month, sex_column[c.sex], c.provider, c.n)
            for c in found
            for m in range(max(c.first_month, period.first_month), min(c.last_month, period.last_month) + 1)
        ]
        table = provider_cutoff(cells, len(keys), len(SEXES))
        labels = keys
        published = suppress(table, total_row=False, total_column=True)
        columns = [spec.row_header, *[name for _, name in SEXES], "Totalt"]
    elif spec.layout == "sex":
        labels = [name for _, name in SEXES]
        table = provider_cutoff([(sex_column[c.sex], 0, c.provider, c.n) for c in found], len(SEXES), 1)
        published = suppress(table, total_row=True, total_column=False)
        labels.append("Totalt")
        columns = [spec.row_header, "Sjukfall"]
    else:
        present = {c.value for c in found}
        if spec.fixed_rows is not None:
            keys = list(spec.fixed_rows)
            keys += sorted(present - set(keys))
        else:
            keys = sorted(present, key=spec.row_order) if spec.row_order else sorted(present)
        row_of = {k: i for i, k in enumerate(keys)}
        cells = [(row_of[c.value], sex_column[c.sex], c.provider, c.n) for c in found]
        table = provider_cutoff(cells, len(keys), len(SEXES))
        published = suppress(table, total_row=True, total_column=True)
        labels = [spec.label(k) for k in keys] + ["Riket" if spec.layout == "county" else "Totalt"]
        columns = [spec.row_header, *[name for _, name in SEXES], "Totalt"]
        if spec.layout == "county":
            keys.append("00")
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
                suppressed.append([i, len(columns) - 1])  # the rate would give the suppressed total back
        suppressed.sort()
    return ReportView(
        report=spec.name,
        title=spec.title,
        description=spec.description,
        period_start=period.start,
        period_end=period.end,
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
