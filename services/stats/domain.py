"""Sick-leave statistics rules (DOMAIN.md, "Sick-leave statistics"), pure: no I/O, no clock.

- Facts: what statistics keeps of a certificate (a keyed pseudonym, sex, age group, county, care provider, type,
  ICD-10 chapter and group, periods and degrees, signing month and time) and nothing else.
- Sjukfall: one person's certificates from one care provider merge unless more than 5 days lie between one
  period's end and the next period's start.
- Groupings of age and length, and aggregate keys.
- Aggregate deltas carry each row's count and the sum of its records' keys (the cell key method, protection.py).
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import NamedTuple

from schemas import codesystems
from schemas.certificate import Ag7804Certificate, LisjpCertificate
from schemas.identifiers import parse_personal_number
from services.stats.protection import record_key
from services.stats.released import StatsCertificate

# Only these types make sick-leave cases (DOMAIN.md). Every released type is counted in "certificates per type".
CASE_TYPES = frozenset({"LISJP", "FK7263"})
MAX_GAP_DAYS = 5
UNKNOWN = "okänd"

Period = tuple[date, date, int]  # start, end (inclusive), degree


class UnusableCertificate(ValueError):
    """A certificate statistics cannot take in (its personnummer does not parse)."""


def pseudonym(citizen_ref: str, key: str) -> str:
    """The person's statistics pseudonym: HMAC-SHA256 of the system's citizen ref under the statistics key.

    Withdrawal (which names only the citizen ref) finds the person's facts by computing it again: no table links
    a citizen ref to a pseudonym, and without the statistics key the pseudonym cannot be computed from a citizen ref.
    """
    return hmac.digest(key.encode(), b"stats:" + citizen_ref.encode(), "sha256").hex()


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
    """(normalised code, chapter, group) of an ICD-10-SE or KSH97-P code: the chapter's roman numeral and the block
    (avsnitt) of ICD-10-SE its category lies in (schemas.codesystems), each UNKNOWN when there is none."""
    plain = codesystems.normalize(code)
    block = codesystems.block_of(plain)
    return plain, codesystems.chapter_of(plain) or UNKNOWN, block.code if block else UNKNOWN


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


def fact_of(certificate: LisjpCertificate | Ag7804Certificate | StatsCertificate, key: str, citizen_ref: str) -> Fact:
    """The statistics facts of a released certificate, as coarse as the reports need: the pseudonym (keyed hash of
    the citizen ref), sex, the age group (kept as its lowest age), county, care provider, ICD-10 chapter and group
    (not the code), the signing month (as its first day), the signing time (only to order a person's certificates)
    and the sick-leave periods. No name, address, personnummer, exact age, diagnosis code or free text survives."""
    signed_at = certificate.signed_at
    signed_on = signed_at.date()
    person = person_of(certificate.patient.personnummer, signed_on)
    content = certificate.content
    chapter = group = None
    if content.diagnoses:
        _, chapter, group = classify(content.diagnoses[0].code)
    periods = content.sick_leave_periods
    unit = certificate.care_unit
    return Fact(
        certificate.id,
        pseudonym(citizen_ref, key),
        certificate.type,
        unit.care_provider.hsa_id,
        unit.county.value,
        "M" if person.male else "F",
        age_floor(person.age_on(signed_on)),
        None,
        chapter,
        group,
        signed_on.replace(day=1),
        round(signed_at.timestamp() * 1_000_000),
        tuple(sorted([(p.start, p.end, p.degree) for p in periods])) if periods else (),
    )


def replaced_id(certificate: LisjpCertificate | Ag7804Certificate | StatsCertificate) -> str | None:
    """The certificate this one replaces (relation REPLACES), if any: it leaves cases and counts."""
    relation = certificate.relation
    if relation is not None and relation.kind == "REPLACES":
        return str(relation.certificate_id)
    return None


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


def age_floor(age: int) -> int:
    """The lowest age of the age group (what facts keep instead of the age: the highest age of a case falls in the
    group of the highest floor)."""
    if age < 16:
        return 0
    if age > 65:
        return 66
    return 16 + (age - 16) // 5 * 5


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


# Aggregate rows: (dimension, value, first month, last month, county, provider, sex) → (count, sum of record keys).
AggKey = tuple[str, str, int, int, str, str, str]
Delta = dict[AggKey, tuple[int, int]]
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


def case_record_key(secret: bytes, case: Case) -> int:
    """A case's record key (protection.py): the same for as long as the case is the person's case at that care
    provider from that first day."""
    return record_key(secret, "case", case.pseudonym, case.provider, case.first_day.isoformat())


def certificate_record_key(secret: bytes, fact: Fact) -> int:
    return record_key(secret, "certificate", fact.certificate_id)


def aggregate_delta(
    secret: bytes,
    removed_cases: Iterable[Case],
    added_cases: Iterable[Case],
    removed_facts: Iterable[Fact] = (),
    added_facts: Iterable[Fact] = (),
) -> Delta:
    """Net change of the aggregates (count and sum of record keys); keys whose changes cancel out are left out."""
    acc: dict[AggKey, list[int]] = {}
    get = acc.get
    for sign, cases in ((1, added_cases), (-1, removed_cases)):
        for case in cases:
            k = sign * case_record_key(secret, case)
            for key in case_keys(case):
                if (entry := get(key)) is None:
                    acc[key] = [sign, k]
                else:
                    entry[0] += sign
                    entry[1] += k
    for sign, facts in ((1, added_facts), (-1, removed_facts)):
        for fact in facts:
            k = sign * certificate_record_key(secret, fact)
            key = certificate_key(fact)
            if (entry := get(key)) is None:
                acc[key] = [sign, k]
            else:
                entry[0] += sign
                entry[1] += k
    return {key: (n, k) for key, (n, k) in acc.items() if n or k}


def merge_deltas(into: dict[AggKey, list[int]], delta: Delta) -> None:
    """Add one delta to a running total (the batch's)."""
    for key, (n, k) in delta.items():
        if (entry := into.get(key)) is None:
            into[key] = [n, k]
        else:
            entry[0] += n
            entry[1] += k


def row_labels(mapping: Mapping[str, str], keys: Iterable[str]) -> list[str]:
    """Labels of row keys, falling back to the key itself."""
    return [mapping.get(k, k) for k in keys]
