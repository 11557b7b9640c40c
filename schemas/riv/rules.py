"""The published business rules (schematron) of LISJP v1 and AG7804 v1, as our own code.

`check(intyg, today)` answers every rule the certificate breaks, each as a `Violation(rule, message)`: `rule` is the
schematron pattern id (`q1.1`, `q28.1-R5`, `intyg`, ...), `message` its Swedish message. Where a pattern extends one
of the abstract rules (non-empty-string, boolean, cv, date, period), the rule is the extending pattern and the
message the abstract rule's message followed by the delsvar id.

The rules follow Inera's files to the letter, quirks included: XPath's `normalize-space` on codes, unanchored
`matches` where the original is unanchored, string comparison of periods, a delsvar rule firing wherever a delsvar of
that id appears. What the contract's schema already guarantees (a cv has one code and one codeSystem, a period's
dates are valid dates) is not checked again; the typed model cannot express it otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from schemas.riv.transport import CV, DatePeriod, Delsvar, Intyg, Svar

__all__ = ["Violation", "check"]


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str


# --- XPath helpers ---------------------------------------------------------------------------------------------

_XML_SPACE = " \t\r\n"
_SPACES = re.compile(r"[ \t\r\n]+")


def _ns(value: str) -> str:
    """XPath normalize-space: XML whitespace only, trimmed and collapsed."""
    if not value or (
        value[0] != " " and value[-1] != " " and "  " not in value
        and "\t" not in value and "\n" not in value and "\r" not in value
    ):  # fmt: skip
        return value  # already normal, as most values are: no regex
    return _SPACES.sub(" ", value).strip(_XML_SPACE)


def _anchored(regex: str) -> re.Pattern[str]:
    """A schematron `^...$` regex; XPath's `$` is the end of the string (Python's also matches before a newline)."""
    return re.compile(regex[:-1] + r"\Z" if regex.endswith("$") else regex)


def _elements(d: Delsvar) -> int:
    """Child elements of a delsvar; a typed value is at least one, whoever built the Delsvar."""
    return max(d.elements, 1 if d.value is not None else 0)


def _cv(d: Delsvar) -> CV | None:
    """The delsvar's single `tp:cv`, or None (no cv, or not alone: the model keeps a value only when alone)."""
    return d.value if isinstance(d.value, CV) and _elements(d) == 1 else None


def _period(d: Delsvar) -> DatePeriod | None:
    return d.value if isinstance(d.value, DatePeriod) and _elements(d) == 1 else None


def _code(d: Delsvar) -> str | None:
    cv = _cv(d)
    return None if cv is None else _ns(cv.code)


def _is_true(d: Delsvar) -> bool:
    """`matches(normalize-space(.), '1|true')` — unanchored, as written."""
    return re.search("1|true", _ns(d.text)) is not None


def _is_false(d: Delsvar) -> bool:
    return re.search("0|false", _ns(d.text)) is not None


_DATE = re.compile(r"(-?)([0-9]{4,})-([0-9]{2})-([0-9]{2})(Z|[+-]([0-9]{2}):([0-9]{2}))?")


def _xs_date(value: str) -> tuple[int, int, int] | None:
    """`castable as xs:date` (XML Schema 1.0 lexical form, time zone allowed): (year, month, day), or None."""
    m = _DATE.fullmatch(_ns(value))
    if m is None:
        return None
    sign, year_text, month_text, day_text, zone, hours, minutes = m.groups()
    if len(year_text) > 4 and year_text.startswith("0"):
        return None
    year, month, day = int(sign + year_text), int(month_text), int(day_text)
    if year == 0 or not 1 <= month <= 12:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    if not 1 <= day <= days:
        return None
    if zone not in (None, "Z") and (int(minutes) > 59 or int(hours) * 60 + int(minutes) > 14 * 60):
        return None
    return year, month, day


_NUMBER = re.compile(r"[ \t\r\n]*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)[ \t\r\n]*")


def _number(value: str) -> float | None:
    """XPath number(): None for NaN."""
    return float(value) if _NUMBER.fullmatch(value) else None


# --- the certificate as the rules see it -----------------------------------------------------------------------


class _Doc:
    """The answers indexed by svar id and by delsvar id (anywhere in the certificate), in document order."""

    __slots__ = ("by_delsvar", "by_svar", "form_svar", "intyg", "today")

    def __init__(self, intyg: Intyg, today: date, form_svar: frozenset[str]) -> None:
        self.intyg = intyg
        self.today = today
        self.form_svar = form_svar  # of the svar ids in _FORM_ONLY, those whose patterns the form has
        self.by_svar: dict[str, list[Svar]] = {}
        self.by_delsvar: dict[str, list[tuple[Svar, Delsvar]]] = {}
        for svar in intyg.svar:
            self.by_svar.setdefault(svar.id, []).append(svar)
            for d in svar.delsvar:
                self.by_delsvar.setdefault(d.id, []).append((svar, d))

    def count(self, svar_id: str) -> int:
        return len(self.by_svar.get(svar_id, ()))

    def answers(self, svar_id: str) -> Sequence[Svar]:
        return self.by_svar.get(svar_id, ())

    def parts(self, delsvar_id: str) -> Sequence[tuple[Svar, Delsvar]]:
        return self.by_delsvar.get(delsvar_id, ())

    def codes(self, delsvar_id: str) -> list[str]:
        """The normalized cv codes of every delsvar of this id (`//gn:delsvar[@id=..]/tp:cv/tp:code`)."""
        return [c for _, d in self.parts(delsvar_id) if (c := _code(d)) is not None]


def _siblings(svar: Svar, delsvar_id: str) -> list[Delsvar]:
    return [d for d in svar.delsvar if d.id == delsvar_id]


def _first_code(svar: Svar, delsvar_id: str | None) -> str:
    """`normalize-space(gn:delsvar[@id=..]/tp:cv/tp:code)` of one svar ('' if none); None = any delsvar, the
    `gn:delsvar['32.1']` quirk of R22/R29 (a string predicate is always true)."""
    for d in svar.delsvar:
        if delsvar_id is None or d.id == delsvar_id:
            code = _code(d)
            if code is not None:
                return code
    return ""


# --- tables: the structure of each svar and the value of each delsvar ------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """A `q<n>` pattern on `//gn:svar[@id=n]`: instans, how many of each delsvar, which delsvar ids."""

    pattern: str
    ids: str  # the delsvar id regex, as the message shows it
    counts: tuple[tuple[str, int, int, str], ...]  # (delsvar id, min, max, message)
    instans: str | None = None  # message when the instans number is missing (a repeatable question)


Kind = Literal["text", "boolean", "cv", "diagnosis", "date", "period"]


@dataclass(frozen=True, slots=True)
class _Part:
    """A `q<n.m>` pattern on `//gn:delsvar[@id=n.m]`: the abstract rule it extends, and for a cv its code system
    and codes."""

    pattern: str
    kind: Kind
    code_system: str = ""
    codes: frozenset[str] = frozenset()
    codes_message: str = ""


def _one(delsvar_id: str, message: str) -> tuple[str, int, int, str]:
    return (delsvar_id, 1, 1, message)


def _at_most_one(delsvar_id: str, message: str) -> tuple[str, int, int, str]:
    return (delsvar_id, 0, 1, message)


_GRUND = "'Grund för medicinskt underlag (MU)'"
_X_DAGAR = "'Patienten kommer med stor sannolikhet att återgå helt i nuvarande sysselsättning efter x antal dagar'"

_SHAPES: dict[str, _Shape] = {
    s.pattern[1:]: s
    for s in (
        _Shape(
            "q1",
            r"^1\.[123]$",
            (
                _one("1.1", f"{_GRUND} måste ha ett 'Typ av grund för MU'."),
                _one("1.2", f"{_GRUND} måste ha ett 'Datum som grund för MU'."),
                _at_most_one("1.3", f"{_GRUND} får ha högst ett 'Vilken annan grund finns för MU'."),
            ),
            instans=f"{_GRUND} måste ha ett instansnummer.",
        ),
        _Shape("q27", r"^27\.[1]$", (_one("27.1", "'Smittbärarpenning' måste ha ett 'Om smittbärarpenning'."),)),
        _Shape(
            "q28",
            r"^28\.[1]$",
            (_one("28.1", "'Typ av sysselsättning' måste ha ett 'Typ av sysselsättning'."),),
            instans="'Typ av sysselsättning' måste ha ett instansnummer.",
        ),
        _Shape("q29", r"^29\.[1]$", (_one("29.1", "'Nuvarande arbete' måste ha ett 'Yrke och arbetsuppgifter'."),)),
        _Shape(
            "q30",
            r"^30\.[1]$",
            (
                _one(
                    "30.1",
                    "'Arbetsmarknadspolitiskt program' måste ha ett 'Aktiviteter i arbetsmarknadspolitiskt program'.",
                ),
            ),
        ),
        _Shape(
            "q6",
            r"^6\.[123456]$",
            (
                _one("6.1", "'Typ av diagnos' måste ha en 'Diagnostext'."),
                _one("6.2", "'Typ av diagnos' måste ha en 'Diagnoskod ICD-10'."),
            ),
        ),
        _Shape("q35", r"^35\.[1]$", (_one("35.1", "'Funktionsnedsättning' måste ha ett 'Beskrivning'."),)),
        _Shape("q17", r"^17\.[1]$", (_one("17.1", "'Aktivitetsbegränsningar' måste ha ett 'Beskrivning'."),)),
        _Shape(
            "q19",
            r"^19\.[1]$",
            (
                _one(
                    "19.1",
                    "'Pågående medicinska behandlingar' måste ha ett "
                    "'Typ av pågående behandlingar och ansvarig vårdenhet'.",
                ),
            ),
        ),
        _Shape(
            "q20",
            r"^20\.[1]$",
            (
                _one(
                    "20.1",
                    "'Planerade medicinska behandlingar' måste ha ett "
                    "'Typ av planerade behandlingar och ansvarig vårdenhet'.",
                ),
            ),
        ),
        _Shape(
            "q32",
            r"^32\.[12]$",
            (
                _one("32.1", "'Sjukskrivning' måste ha en 'grad'."),
                _one("32.2", "'Sjukskrivning' måste ha en 'period'."),
            ),
            instans="'Sjukskrivning' måste ha ett instansnummer.",
        ),
        _Shape(
            "q37",
            r"^37\.[1]$",
            (
                _one(
                    "37.1",
                    "'Försäkringsmedicinskt beslutsstöd' måste ha ett 'Överskrider försäkringsmedicinskt beslutsstöd'.",
                ),
            ),
        ),
        _Shape(
            "q33",
            r"^33\.[12]$",
            (
                _one("33.1", "'Arbetstidsförläggning' måste ha ett 'Om arbetstidsförläggning'."),
                _at_most_one("33.2", "'Arbetstidsförläggning' får ha högst ett 'Motivering arbetstidsförläggning'."),
            ),
        ),
        _Shape("q34", r"^34\.[1]$", (_one("34.1", "'Arbetsresor' måste ha ett 'Om arbetsresor'."),)),
        _Shape(
            "q39",
            r"^39\.[13]$",
            (
                _one("39.1", "'Prognos' måste ha ett 'Beskrivning prognos'."),
                _at_most_one("39.3", f"'Prognos' får ha högst ett {_X_DAGAR}."),
            ),
        ),
        _Shape(
            "q40",
            r"^40\.[1]$",
            (_one("40.1", "'Arbetslivsinriktade åtgärder' måste ha ett 'Val av arbetslivsinriktade åtgärder'."),),
            instans="'Arbetslivsinriktade åtgärder' måste ha ett instansnummer.",
        ),
        _Shape(
            "q44",
            r"^44\.[1]$",
            (
                _one(
                    "44.1",
                    "'Arbetslivsinriktade åtgärder aktuellt' måste ha ett "
                    "'Beskrivning arbetslivsriktade åtgärder aktuellt'.",
                ),
            ),
        ),
        _Shape("q25", r"^25\.[1]$", (_one("25.1", "'Övrigt' måste ha ett 'Typ av övriga upplysningar'."),)),
        _Shape(
            "q26",
            r"^26\.[12]$",
            (
                _one("26.1", "'Kontakt önskas' måste ha ett 'Kontakt önskas'."),
                _at_most_one("26.2", "'Kontakt önskas' får ha högst ett 'Motivering av kontakt önskas'."),
            ),
        ),
        _Shape(
            "q103",
            r"^103\.[12]$",
            (
                _one("103.1", "'Kontakt önskas' måste ha ett 'Kontakt med arbetsgivaren'."),
                _at_most_one("103.2", "'Kontakt önskas' får ha högst ett 'Motivering av kontakt önskas'."),
            ),
        ),
    )
}
_SHAPE_IDS = {s.pattern: _anchored(s.ids) for s in _SHAPES.values()}


def _coded(pattern: str, code_system: str, codes: str, message: str) -> _Part:
    return _Part(pattern, "cv", code_system, frozenset(codes.split()), message)


def _parts(kinds: Mapping[str, Kind], *coded: _Part) -> dict[str, _Part]:
    table = {delsvar_id: _Part(f"q{delsvar_id}", kind) for delsvar_id, kind in kinds.items()}
    table.update({p.pattern[1:]: p for p in coded})
    return table


_COMMON_KINDS: dict[str, Kind] = {
    "1.2": "date",
    "1.3": "text",
    "27.1": "boolean",
    "29.1": "text",
    "6.1": "text",
    "6.2": "diagnosis",
    "6.3": "text",
    "6.4": "diagnosis",
    "6.5": "text",
    "6.6": "diagnosis",
    "35.1": "text",
    "17.1": "text",
    "19.1": "text",
    "20.1": "text",
    "32.2": "period",
    "37.1": "text",
    "33.1": "boolean",
    "33.2": "text",
    "34.1": "boolean",
    "44.1": "text",
    "25.1": "text",
}
_COMMON_CODED = (
    _coded(
        "q1.1",
        "KV_FKMU_0001",
        "UNDERSOKNING TELEFONKONTAKT JOURNALUPPGIFTER ANNAT",
        "'Typ av grund för MU' kan ha ett av värdena UNDERSOKNING, TELEFONKONTAKT, JOURNALUPPGIFTER, ANNAT.",
    ),
    _coded(
        "q32.1",
        "KV_FKMU_0003",
        "HELT_NEDSATT TRE_FJARDEDEL HALFTEN EN_FJARDEDEL",
        "'Sjukskrivningsnivå' kan ha ett av värdena HELT_NEDSATT, TRE_FJARDEDEL, HALFTEN, EN_FJARDEDEL.",
    ),
    _coded(
        "q39.1",
        "KV_FKMU_0006",
        "STOR_SANNOLIKHET SANNOLIKT_INTE PROGNOS_OKLAR ATER_X_ANTAL_DGR",
        "'Beskrivning prognos' kan ha ett av värdena STOR_SANNOLIKHET, SANNOLIKT_INTE, PROGNOS_OKLAR eller "
        "ATER_X_ANTAL_DGR.",
    ),
    _coded(
        "q39.3",
        "KV_FKMU_0007",
        "TRETTIO_DGR SEXTIO_DGR NITTIO_DGR HUNDRAATTIO_DAGAR TREHUNDRASEXTIOFEM_DAGAR",
        f"{_X_DAGAR} kan ha ett av värdena TRETTIO_DGR, SEXTIO_DGR, NITTIO_DGR, HUNDRAATTIO_DAGAR eller "
        "TREHUNDRASEXTIOFEM_DAGAR.",
    ),
)

_LISJP_PARTS = _parts(
    {**_COMMON_KINDS, "30.1": "text", "26.1": "boolean", "26.2": "text"},
    *_COMMON_CODED,
    _coded(
        "q28.1",
        "KV_FKMU_0002",
        "NUVARANDE_ARBETE ARBETSSOKANDE FORALDRALEDIG STUDIER PROGRAM",
        "'Typ av sysselsättning' kan ha ett av värdena NUVARANDE_ARBETE, ARBETSSOKANDE, FORALDRALEDIG, STUDIER "
        "eller PROGRAM.",
    ),
    _coded(
        "q40.1",
        "KV_FKMU_0004",
        "EJ_AKTUELLT ARBETSTRANING ARBETSANPASSNING SOKA_NYTT_ARBETE BESOK_ARBETSPLATS ERGONOMISK HJALPMEDEL "
        "KONFLIKTHANTERING KONTAKT_FHV OMFORDELNING OVRIGA_ATGARDER",
        "'Val av arbetslivsinriktade åtgärder' kan ha ett av värdena EJ_AKTUELLT, ARBETSTRANING, ARBETSANPASSNING, "
        "SOKA_NYTT_ARBETE, BESOK_ARBETSPLATS, ERGONOMISK, HJALPMEDEL, KONFLIKTHANTERING, KONTAKT_FHV, OMFORDELNING "
        "eller OVRIGA_ATGARDER.",
    ),
)
_AG7804_PARTS = _parts(
    {**_COMMON_KINDS, "100.1": "boolean", "103.1": "boolean", "103.2": "text"},
    *_COMMON_CODED,
    _coded(
        "q28.1",
        "KV_FKMU_0002",
        "NUVARANDE_ARBETE ARBETSSOKANDE FORALDRALEDIG STUDIER",
        "'Typ av sysselsättning' kan ha ett av värdena NUVARANDE_ARBETE, ARBETSSOKANDE, FORALDRALEDIG eller STUDIER.",
    ),
    _coded(
        "q40.1",
        "KV_FKMU_0004",
        "EJ_AKTUELLT ARBETSTRANING ARBETSANPASSNING BESOK_ARBETSPLATS ERGONOMISK HJALPMEDEL KONTAKT_FHV "
        "OMFORDELNING OVRIGA_ATGARDER",
        "'Val av arbetslivsinriktade åtgärder' kan ha ett av värdena EJ_AKTUELLT, ARBETSTRANING, ARBETSANPASSNING, "
        "BESOK_ARBETSPLATS, ERGONOMISK, HJALPMEDEL, KONTAKT_FHV, OMFORDELNING eller OVRIGA_ATGARDER.",
    ),
)


# --- the abstract rules ----------------------------------------------------------------------------------------


def _abstract(part: _Part, d: Delsvar, message: str) -> Violation:
    return Violation(part.pattern, f"{message} (delsvar {d.id})")


_DIAGNOSIS_SYSTEM = re.compile(r"(1.2.752.116.1.1.1.1.3|1.2.752.116.1.3.1.4.1)")  # unanchored, dots unescaped
_DIAGNOSIS_CODE = re.compile(
    r"([A-EG-Ya-eg-y][0-9]{2}[A-Za-z0-9-]*|[Zz][0-689][0-9][A-Za-z0-9-]*|[Zz]7[0-24-9][A-Za-z0-9-]*"
    r"|[Zz]73[A-Za-z0-9-]+|[Ff][0-9]{2}[A-Za-z0-9-]+)"
)
_DIAGNOSIS_CODE_MESSAGE = (
    "Diagnoskod måste anges som bokstav följt av två siffror följt av noll eller flera bokstäver, siffror eller "
    "bindestreck, d.v.s. minst tre positioner måste anges. Om diagnoskoden börjar med F eller Z73 måste bokstav och "
    "två siffor följas av minst en bokstav, siffra eller bindestreck, d.v.s. minst fyra positioner måste anges."
)
_NO_CV = (
    "Ett värde av typen CV måste ha ett cv-element",
    "codeSystem är obligatoriskt",
    "'codeSystem' får inte vara inbäddat i något element.",
    "code är obligatoriskt",
    "'code' får inte vara inbäddat i något element.",
)
_NO_START = (
    "'from' får inte vara inbäddat i något element.",
    "'from' måste vara ett giltigt datum.",
    "'from' måste uttryckas som YYYY-MM-DD.",
)
_NO_END = (
    "'tom' får inte vara inbäddat i något element.",
    "'tom' måste vara ett giltigt datum.",
    "'end' måste uttryckas som YYYY-MM-DD.",
)
_YYYY_MM_DD = re.compile(r"\d{4}-\d\d-\d\d")  # XPath's \d is any decimal digit, as Python's


def _check_part(part: _Part, d: Delsvar) -> Iterator[Violation]:
    kind = part.kind
    if kind == "text":
        if _elements(d):
            yield _abstract(part, d, "Värdet får inte vara inbäddat i något element.")
        if not _ns(d.text):
            yield _abstract(part, d, "Sträng kan inte vara tom.")
    elif kind == "boolean":
        if _elements(d):
            yield _abstract(part, d, "Booleskt värde får inte vara inbäddat i något element.")
        if _ns(d.text) not in ("true", "false", "1", "0"):
            yield _abstract(part, d, "Kan bara vara 'true/1' eller 'false/0'")
    elif kind == "date":
        if _elements(d):
            yield _abstract(part, d, "Datum får inte vara inbäddat i något element.")
        if _xs_date(d.text) is None:
            yield _abstract(part, d, "Värdet måste vara ett giltigt datum.")
        if not _YYYY_MM_DD.match(d.text):
            yield _abstract(part, d, "Datumet måste uttryckas som YYYY-MM-DD.")
    elif kind == "period":
        yield from _check_period(part, d)
    else:  # a cv: of a code system of the contract, or a diagnosis
        cv = _cv(d)
        if cv is None:
            for message in _NO_CV:
                yield _abstract(part, d, message)
        code = "" if cv is None else _ns(cv.code)
        if kind == "cv":
            if cv is None or cv.code_system != part.code_system:
                yield Violation(part.pattern, f"'codeSystem' måste vara '{part.code_system}'.")
            if code not in part.codes:
                yield Violation(part.pattern, part.codes_message)
        else:
            if cv is None or not _DIAGNOSIS_SYSTEM.search(_ns(cv.code_system)):
                yield Violation(part.pattern, "Diagnoskodsystem måste vara OID för ICD-10-SE eller KSH97-P.")
            if not _DIAGNOSIS_CODE.fullmatch(code):
                yield Violation(part.pattern, _DIAGNOSIS_CODE_MESSAGE)
            if len(code) > 5:
                yield Violation(part.pattern, "Diagnoskod får inte vara längre än 5 tecken.")


def _check_period(part: _Part, d: Delsvar) -> Iterator[Violation]:
    period = _period(d)
    if period is None:
        yield _abstract(part, d, "En period måste inneslutas av ett 'datePeriod'-element")
    start = None if period is None or period.start is None else period.start.isoformat()
    end = None if period is None or period.end is None else period.end.isoformat()
    if start is None:
        for message in _NO_START:
            yield _abstract(part, d, message)
    if end is None:
        for message in _NO_END:
            yield _abstract(part, d, message)
    if not (start or "") <= (end or ""):  # a string comparison; a missing end is ''
        yield _abstract(part, d, "'from' måste vara mindre än eller lika med 'to'")


# --- the form-wide and cross rules -----------------------------------------------------------------------------

Rule = Callable[[_Doc], Iterator[Violation]]


def _shapes(doc: _Doc) -> Iterator[Violation]:
    """Every `q<n>` structure pattern, on every svar it has a table entry for (used by both forms)."""
    for svar in doc.intyg.svar:
        shape = _SHAPES.get(svar.id)
        if shape is None or (svar.id in _FORM_ONLY and svar.id not in doc.form_svar):
            continue
        yield from _check_shape(shape, svar)


def _check_shape(shape: _Shape, svar: Svar) -> Iterator[Violation]:
    if shape.instans is not None and svar.instans is None:
        yield Violation(shape.pattern, shape.instans)
    for delsvar_id, low, high, message in shape.counts:
        if not low <= len(_siblings(svar, delsvar_id)) <= high:
            yield Violation(shape.pattern, message)
    ids = _SHAPE_IDS[shape.pattern]
    if any(not ids.match(d.id) for d in svar.delsvar):
        yield Violation(
            shape.pattern,
            f'Oväntat delsvars-id i delsvar till svar "{svar.id}". Delsvars-id:n måste matcha "{shape.ids}".',
        )


_FORM_ONLY = frozenset({"26", "30", "103"})  # structure patterns that only one of the forms has


def _instans(doc: _Doc) -> Iterator[Violation]:
    for svar in doc.intyg.svar:
        if svar.instans is not None and svar.instans < 1:
            yield Violation("instans-pattern", f"'Instans' måste vara större än 0. (svar {svar.id})")


def _no_repeated_code(pattern: str, svar_id: str, delsvar_id: str, message: str, *, any_delsvar: bool = False) -> Rule:
    """`not(preceding-sibling::svar[@id=n]/delsvar[@id=..]/tp:cv/tp:code/normalize-space() = normalize-space(...))`."""

    def rule(doc: _Doc) -> Iterator[Violation]:
        seen: set[str] = set()
        for svar in doc.answers(svar_id):
            if _first_code(svar, None if any_delsvar else delsvar_id) in seen:
                yield Violation(pattern, message)
            seen.update(c for d in _siblings(svar, delsvar_id) if (c := _code(d)) is not None)

    return rule


def _q1(doc: _Doc) -> Iterator[Violation]:
    yield from _no_repeated_code(
        "q1", "1", "1.1", "Samma 'Typ av grund för MU' kan inte användas flera gånger i samma 'MU'."
    )(doc)
    for svar, _ in doc.parts("1.3"):
        if any(_code(d) not in (None, "ANNAT") for d in _siblings(svar, "1.1")):
            yield Violation(
                "q1.3", "Om 'Typ av grund för MU' inte är 'Annat' så får 'Vilken annan grund finns för MU' inte anges."
            )
    for svar, d in doc.parts("1.1"):
        if _code(d) == "ANNAT" and not _siblings(svar, "1.3"):
            yield Violation(
                "q1.1-1.3", "Om 'Typ av grund för MU' är 'Annat' så måste 'Vilken annan grund finns för MU' anges."
            )


def _q28(doc: _Doc) -> Iterator[Violation]:
    codes = doc.codes("28.1")
    for code, svar_id, number, name, pattern in (
        ("NUVARANDE_ARBETE", "29", 1, "Nuvarande arbete", "q28.1-q29"),
        ("PROGRAM", "30", 5, "Arbetsmarknadspolitiskt program", "q28.1-q30"),
    ):
        if svar_id in _FORM_ONLY and svar_id not in doc.form_svar:  # AG7804 has no question 30
            continue
        if code in codes and doc.count(svar_id) != 1:
            yield Violation(pattern, f"Om 'Typ av sysselsättning' besvarats med {number}, måste '{name}' besvaras")
        if doc.count(svar_id) and codes.count(code) != 1:
            yield Violation(
                pattern, f"Om 'Typ av sysselsättning' inte besvarats med {number}, får '{name}' inte besvaras"
            )
    yield from _no_repeated_code(
        "q28.1-R5",
        "28",
        "28.1",
        "'Typ av sysselsättning' (DFR 28.1) får besvaras med flera olika koder (KV_FKMU_0002) men varje kod får bara "
        "förekomma en gång.",
    )(doc)


def _q6(doc: _Doc) -> Iterator[Violation]:
    for svar in doc.answers("6"):
        n = {i: len(_siblings(svar, i)) for i in ("6.3", "6.4", "6.5", "6.6")}
        if not ((n["6.3"] == 1 and n["6.4"] == 1) or (n["6.3"] == 0 and n["6.4"] == 0)):
            yield Violation("q6.3-6.4", "Både 'Diagnoskod' och 'Diagnostext' måste finnas för en bidiagnos.")
        if not ((n["6.5"] == 1 and n["6.6"] == 1 and n["6.3"] == 1) or (n["6.5"] == 0 and n["6.6"] == 0)):
            yield Violation(
                "q6.5-6.6-6.3",
                "Både 'Diagnoskod' och 'Diagnostext' måste finnas för en bidiagnos. Dessutom måste 6.3 och 6.4 finnas "
                "om 6.5 och 6.6 finns.",
            )
        main = _first_system(svar, "6.2")
        if not (_matches(main, _first_system(svar, "6.4")) and _matches(main, _first_system(svar, "6.6"))):
            yield Violation(
                "q6.2-6.4-6.6-R12",
                "'Huvuddiagnoskod' (DFR 6.2), 'Bidiagnoskod 1' (DFR 6.4) och 'Bidiagnoskod 2' (DFR 6.6) ska besvaras "
                "med samma kodverk.",
            )


def _first_system(svar: Svar, delsvar_id: str) -> str:
    for d in _siblings(svar, delsvar_id):
        cv = _cv(d)
        if cv is not None:
            return _ns(cv.code_system)
    return ""


def _matches(value: str, pattern: str) -> bool:
    """XPath `matches(value, pattern)` with a pattern from the data (R12): '' matches everything."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


_PARTIAL = frozenset({"TRE_FJARDEDEL", "HALFTEN", "EN_FJARDEDEL"})


def _q32(doc: _Doc) -> Iterator[Violation]:
    earlier: list[DatePeriod] = []
    for svar in doc.answers("32"):
        mine = next((p for d in _siblings(svar, "32.2") if (p := _period(d)) is not None), None)
        start = "" if mine is None or mine.start is None else mine.start.isoformat()
        end = "" if mine is None or mine.end is None else mine.end.isoformat()
        for other in earlier:  # string comparison, strict, as written
            if other.start is not None and other.start.isoformat() < end and _iso(other.end) > start:
                yield Violation("q32", "Två 'perioder' kan inte vara överlappande.")
                break
        earlier.extend(p for d in _siblings(svar, "32.2") if (p := _period(d)) is not None)
    yield from _no_repeated_code(
        "q32.1-R22",
        "32",
        "32.1",
        "'Sjukskrivningsnivå' (DFR 32.1) får besvaras med flera olika koder (KV_FKMU_0003) men varje kod får bara "
        "förekomma en gång.",
        any_delsvar=True,
    )(doc)
    codes = doc.codes("32.1")
    smittbarare = any(_is_true(d) for _, d in doc.parts("27.1"))
    for code in codes:
        if code in _PARTIAL and doc.count("33") != 1 and not smittbarare:
            yield Violation(
                "q32.1-33",
                "Om 'Sjukskrivningsnivå' är TRE_FJARDEDEL, HALFTEN eller EN_FJARDEDEL så måste 'Arbetstidsförläggning' "
                "anges.",
            )


def _iso(value: date | None) -> str:
    return "" if value is None else value.isoformat()


_R26 = (
    "'Om arbetstidsförläggning' (DFR 33.1) ska endast besvaras om 'Sjukskrivningsnivå' (DFR 32.1) är besvarad med "
    "kod EN_FJARDEDEL, HALFTEN eller TRE_FJARDEDEL (KV_FKMU_0003)."
)


def _r26_lisjp(doc: _Doc) -> Iterator[Violation]:
    """LISJP: each 32.1 code that is not partial forbids svar 33."""
    for code in doc.codes("32.1"):
        if code not in _PARTIAL and doc.count("33"):
            yield Violation("q32.1-33.1-R26", _R26)


def _r26_ag7804(doc: _Doc) -> Iterator[Violation]:
    """AG7804: each svar 33 needs at least one partial 32.1 code among the svar 32."""
    partial = any(_code(d) in _PARTIAL for svar in doc.answers("32") for d in _siblings(svar, "32.1"))
    for _ in doc.answers("33"):
        if not partial:
            yield Violation("q32.1-33.1-R26", _R26)


def _q33_39(doc: _Doc) -> Iterator[Violation]:
    for svar, d in doc.parts("33.1"):
        motivering = _siblings(svar, "33.2")
        if _is_true(d) and not motivering:
            yield Violation(
                "q33.1-33.2",
                "Om 'Om arbetstidsförläggning' är 'true' så måste 'Motivering arbetstidsförläggning' anges.",
            )
        if _is_false(d) and motivering:
            yield Violation(
                "q33.1-33.2",
                "Om 'Om arbetstidsförläggning' är 'false' så får 'Motivering arbetstidsförläggning' inte anges.",
            )
    for svar, d in doc.parts("39.1"):
        code = _code(d)
        if code is None:
            continue
        dagar = _siblings(svar, "39.3")
        if code == "ATER_X_ANTAL_DGR" and not dagar:
            yield Violation("q39.1-39.3", f"Om 'Beskrivning prognos' är ATER_X_ANTAL_DGR så måste {_X_DAGAR} anges.")
        if code != "ATER_X_ANTAL_DGR" and dagar:
            yield Violation(
                "q39.1-39.3", f"Om 'Beskrivning prognos' inte är ATER_X_ANTAL_DGR så får {_X_DAGAR} inte anges."
            )


def _q40(doc: _Doc) -> Iterator[Violation]:
    earlier: list[str] = []  # raw codes: this assert compares without normalize-space
    for svar in doc.answers("40"):
        mine = [cv.code for d in _siblings(svar, "40.1") if (cv := _cv(d)) is not None]
        if any(c != "EJ_AKTUELLT" for c in earlier) and "EJ_AKTUELLT" in mine:
            yield Violation("q40", "'Inte aktuellt' kan inte kombineras med andra svar")
        if "EJ_AKTUELLT" in earlier and any(c != "EJ_AKTUELLT" for c in mine):
            yield Violation("q40", "'Inte aktuellt' kan inte kombineras med andra svar")
        earlier.extend(mine)
    yield from _no_repeated_code(
        "q40.1-R29",
        "40",
        "40.1",
        "'Val av arbetslivsinriktade åtgärder' (DFR 40.1) får besvaras med flera olika koder (KV_FKMU_0004) men "
        "varje kod får bara förekomma en gång.",
        any_delsvar=True,
    )(doc)
    for code in doc.codes("40.1"):
        if code == "EJ_AKTUELLT" and doc.count("44"):
            yield Violation(
                "q40.1-44",
                "Om 'Val av arbetslivsinriktade åtgärder' är 'EJ_AKTUELLT' så får 'Beskrivning arbetslivsriktade "
                "åtgärder aktuellt' inte anges.",
            )


def _kontakt(pattern: str, delsvar_id: str, motivering_id: str) -> Rule:
    def rule(doc: _Doc) -> Iterator[Violation]:
        for svar, d in doc.parts(delsvar_id):
            if _is_false(d) and _siblings(svar, motivering_id):
                yield Violation(
                    pattern, "Om 'Kontakt önskas' besvarats med nej kan 'Motivering av kontakt önskas' inte fyllas i."
                )

    return rule


def _q27_1(name: str, funktionsnedsattning: bool) -> Rule:
    """`q27.1`: unless 'Om smittbärarpenning' is true, the questions it replaces must be answered."""
    required: list[tuple[str, bool, str]] = [
        ("1", True, "minst en 'Grund för medicinskt underlag'"),
        ("28", True, "minst en 'Typ av sysselsättning'"),
        ("35", False, "'Funktionsnedsättning'"),
        ("17", False, "'Aktivitetsbegränsningar'"),
        ("39", False, "'Prognos'"),
        ("40", True, "minst en 'Arbetslivsinriktade åtgärder'"),
    ]
    if not funktionsnedsattning:
        required = [r for r in required if r[0] != "35"]

    def rule(doc: _Doc) -> Iterator[Violation]:
        for _, d in doc.parts("27.1"):
            if _is_true(d):
                continue
            for svar_id, at_least, what in required:
                n = doc.count(svar_id)
                if not (n >= 1 if at_least else n == 1):
                    yield Violation(
                        "q27.1", f"Ett '{name}' måste ange {what} om 'Om smittbärarpenning' inte är 'true'."
                    )

    return rule


def _q9000(doc: _Doc) -> Iterator[Violation]:
    """LISJP's tilläggsfrågor (svar id ≥ 9001): one delsvar (the `string-join(@id, '.1')` of the original compares a
    delsvar's id with itself), no two with the same id, and text in each delsvar."""
    part = _Part("q9000.1", "text")
    seen: set[str] = set()
    for svar in doc.intyg.svar:
        number = _number(svar.id)
        if number is not None and number >= 9001:
            if len(svar.delsvar) != 1:
                yield Violation(
                    "q9000",
                    "En tilläggsfråga måste ha ett delsvar med delfråge-id som består av frågans id plus '.1'.",
                )
            if svar.id in seen:
                yield Violation("q9000", "Två tilläggsfrågor kan inte ha samma id.")
            for d in svar.delsvar:
                yield from _check_part(part, d)
        seen.add(svar.id)


def _q100(doc: _Doc) -> Iterator[Violation]:
    for _, d in doc.parts("100.1"):
        if not re.fullmatch("true|1|false|0", _ns(d.text)):
            yield Violation("q100.1", "'Önskar förmedla diagnos' måste ha ett svar av typen boolean")
        if _is_true(d) and doc.count("6") != 1:
            yield Violation("q100.1-true", "Om 'Önskar förmedla diagnos' är besvarat med ja, måste diagnoser besvaras")
        if _is_false(d) and doc.count("6") != 0:
            yield Violation(
                "q100.1-false", "Om 'Önskar förmedla diagnos' är besvarat med nej, får ej diagnoser besvaras"
            )


def _r35(doc: _Doc) -> Iterator[Violation]:
    """AG7804: `xs:date(.) le current-date()` on 1.2 (a 1.2 that is no date fails the date rule instead)."""
    today = (doc.today.year, doc.today.month, doc.today.day)
    for _, d in doc.parts("1.2"):
        value = _xs_date(d.text)
        if value is not None and value > today:
            yield Violation("R35-1.2", "Datum som grund för MU får inte vara senare än dagens datum.")


# --- the forms -------------------------------------------------------------------------------------------------

Assert = tuple[Callable[[_Doc], bool], str]


def _at_most(svar_id: str, n: int, message: str) -> Assert:
    return (lambda doc: doc.count(svar_id) <= n, message)


def _either(svar_id: str, exactly_one: bool, message: str) -> Assert:
    if exactly_one:
        return (lambda doc: doc.count(svar_id) == 1 or doc.count("27") == 1, message)
    return (lambda doc: doc.count(svar_id) >= 1 or doc.count("27") == 1, message)


def _first_text(doc: _Doc, svar_id: str, delsvar_id: str) -> str:
    for svar in doc.answers(svar_id):
        for d in _siblings(svar, delsvar_id):
            return _ns(d.text)
    return ""


@dataclass(frozen=True, slots=True)
class _Form:
    name: str
    svar_ids: str
    asserts: tuple[Assert, ...]  # the `intyg` pattern
    parts: Mapping[str, _Part]
    rules: tuple[Rule, ...]
    svar: frozenset[str]  # the svar ids whose structure pattern the form has among _FORM_ONLY


_MU = "Ett 'MU'"
_LISJP = _Form(
    name="MU",
    svar_ids=r"^([16]|1[79]|2[056789]|3[0234579]|4[04]|9[0-9]{3})$",
    asserts=(
        _at_most("1", 4, f"{_MU} får ha högst 4 'Grund för medicinskt underlag'"),
        _at_most("28", 5, f"{_MU} får ha högst 5 'Typ av sysselsättning'"),
        _at_most("29", 1, f"{_MU} får ha högst ett 'Nuvarande arbete'"),
        _at_most("30", 1, f"{_MU} får ha högst ett 'Arbetsmarknadspolitiskt program'"),
        (lambda doc: doc.count("6") == 1, f"{_MU} måste ha en 'Typ av diagnos'"),
        _at_most("35", 1, f"{_MU} får ha högst ett 'Funktionsnedsättning'"),
        _at_most("17", 1, f"{_MU} får ha högst ett 'Aktivitetsbegränsningar'"),
        _at_most("19", 1, f"{_MU} får ha högst ett 'Pågående medicinska behandlingar'"),
        _at_most("20", 1, f"{_MU} får ha högst ett 'Planerade medicinska behandlingar'"),
        (lambda doc: 1 <= doc.count("32") <= 4, f"{_MU} måste ha mellan 1 och 4 'Behov av sjukskrivning'"),
        _at_most("37", 1, f"{_MU} får ha högst ett 'Försäkringsmedicinskt beslutsstöd'"),
        _at_most("33", 1, f"{_MU} får ha högst ett 'Arbetstidsförläggning'"),
        _at_most("34", 1, f"{_MU} får ha högst ett 'Arbetsresor'"),
        _at_most("39", 1, f"{_MU} får ha högst ett 'Prognos'"),
        _at_most("40", 10, f"{_MU} får ha högst 10 'Arbetslivsinriktade åtgärder'"),
        _at_most("44", 1, f"{_MU} får ha högst ett 'Arbetslivsinriktade åtgärder aktuellt'"),
        _at_most("25", 1, f"{_MU} får ha högst ett 'Övrigt'"),
        _at_most("26", 1, f"{_MU} får ha högst ett 'Kontakt önskas'"),
        _at_most("27", 1, f"{_MU} får ha högst ett 'Smittbärarpenning'"),
        _either("1", False, f"{_MU} måste antingen ha 'Grund för medicinskt underlag' eller 'Smittbärarpenning'"),
        _either("28", False, f"{_MU} måste antingen ha 'Typ av sysselsättning' eller 'Smittbärarpenning'"),
        _either("35", True, f"{_MU} måste antingen ha 'Funktionsnedsättning' eller 'Smittbärarpenning'"),
        _either("17", True, f"{_MU} måste antingen ha 'Aktivitetsbegränsningar' eller 'Smittbärarpenning'"),
        _either("39", True, f"{_MU} måste antingen ha 'Prognos' eller 'Smittbärarpenning'"),
        _either("40", False, f"{_MU} måste antingen ha 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'"),
    ),
    parts=_LISJP_PARTS,
    rules=(
        _shapes,
        _q1,
        _q27_1("MU", funktionsnedsattning=True),
        _q28,
        _q6,
        _q32,
        _r26_lisjp,
        _q33_39,
        _q40,
        _kontakt("q26.1-26.2", "26.1", "26.2"),
        _q9000,
        _instans,
    ),
    svar=frozenset({"26", "30"}),
)

_AG = "Ett 'AG7804'"
_AG7804 = _Form(
    name="AG7804",
    svar_ids=r"^([16]|1[79]|2[056789]|3[234579]|4[04]|10[013])$",
    asserts=(
        _at_most("1", 4, f"{_AG} får ha högst 4 'Grund för medicinskt underlag'"),
        _at_most("28", 4, f"{_AG} får ha högst 4 'Typ av sysselsättning'"),
        _at_most("29", 1, f"{_AG} får ha högst ett 'Nuvarande arbete'"),
        (
            lambda doc: sum(len(_siblings(s, "100.1")) for s in doc.answers("100")) == 1,
            f"{_AG} måste ha ett 'Önskar förmedla diagnos'",
        ),
        (
            lambda doc: doc.count("6") == 0 or re.search("1|true", _first_text(doc, "100", "100.1")) is not None,
            f"{_AG} måste ha Diagnos angivet om 'Önskar förmedla diagnos' är besvarad med Ja",
        ),
        _at_most("35", 1, f"{_AG} får ha högst ett 'Funktionsnedsättning'"),
        _either("17", True, f"{_AG} måste ha ett 'Aktivitetsbegränsningar' eller 'Smittbärarpenning'"),
        _at_most("19", 1, f"{_AG} får ha högst ett 'Pågående medicinska behandlingar'"),
        _at_most("20", 1, f"{_AG} får ha högst ett 'Planerade medicinska behandlingar'"),
        (lambda doc: 1 <= doc.count("32") <= 4, f"{_AG} måste ha mellan 1 och 4 'Behov av sjukskrivning'"),
        _at_most("37", 1, f"{_AG} får ha högst ett 'Försäkringsmedicinskt beslutsstöd'"),
        _at_most("33", 1, f"{_AG} får ha högst ett 'Arbetstidsförläggning'"),
        _at_most("34", 1, f"{_AG} får ha högst ett 'Arbetsresor'"),
        _at_most("39", 1, f"{_AG} får ha högst ett 'Prognos'"),
        (
            lambda doc: 1 <= doc.count("40") <= 8 or doc.count("27") == 1,
            f"{_AG} måste ha mellan 1 och 8 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'",
        ),
        _at_most("44", 1, f"{_AG} får ha högst ett 'Arbetslivsinriktade åtgärder aktuellt'"),
        _at_most("25", 1, f"{_AG} får ha högst ett 'Övrigt'"),
        _at_most("103", 1, f"{_AG} får ha högst ett 'Kontakt önskas'"),
        _at_most("27", 1, f"{_AG} får ha högst ett 'Smittbärarpenning'"),
        _either("1", False, f"{_AG} måste antingen ha 'Grund för medicinskt underlag' eller 'Smittbärarpenning'"),
        _either("28", False, f"{_AG} måste antingen ha 'Typ av sysselsättning' eller 'Smittbärarpenning'"),
        (
            lambda doc: sum(len(_siblings(s, "35.1")) for s in doc.answers("35")) == 1 or doc.count("27") == 1,
            f"{_AG} måste antingen ha 'Funktionsnedsättning' eller 'Smittbärarpenning'",
        ),
        _either("17", True, f"{_AG} måste antingen ha 'Aktivitetsbegränsningar' eller 'Smittbärarpenning'"),
        _either("39", True, f"{_AG} måste antingen ha 'Prognos' eller 'Smittbärarpenning'"),
        _either("40", False, f"{_AG} måste antingen ha 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'"),
    ),
    parts=_AG7804_PARTS,
    rules=(
        _shapes,
        _q1,
        _q27_1("AG7804", funktionsnedsattning=False),
        _q28,
        _q100,
        _q6,
        _q32,
        _r26_ag7804,
        _q33_39,
        _q40,
        _kontakt("q103.1-103.2", "103.1", "103.2"),
        _instans,
        _r35,
    ),
    svar=frozenset({"103"}),
)

_FORMS = {"LISJP": _LISJP, "AG7804": _AG7804}
_MAJOR_1 = re.compile(r"1(\.[0-9]+)?")


def check(intyg: Intyg, today: date) -> list[Violation]:
    """Every business rule of the certificate's type and version that `intyg` breaks, in a stable order (the form,
    then the answers in document order); identical violations are reported once. `today` is Swedish local date,
    for the rules that compare with the current date."""
    code = intyg.typ.code
    form = _FORMS.get(code)
    if form is None:
        return [Violation("intygstyp", f"Intyg av typen '{code}' tar Mina intyg inte emot.")]
    if not _MAJOR_1.fullmatch(intyg.version):
        return [Violation("version", f"Version '{intyg.version}' av '{code}' tar Mina intyg inte emot (endast 1.x).")]
    doc = _Doc(intyg, today, form.svar)
    found: list[Violation] = [Violation("intyg", message) for test, message in form.asserts if not test(doc)]
    ids = _anchored(form.svar_ids)
    if any(not ids.match(svar.id) for svar in intyg.svar):
        found.append(Violation("intyg", f'Oväntat svars-id. Svars-id:n måste matcha "{form.svar_ids}".'))
    for svar in intyg.svar:
        for d in svar.delsvar:
            part = form.parts.get(d.id)
            if part is not None:
                found.extend(_check_part(part, d))
    for rule in form.rules:
        found.extend(rule(doc))
    return list(dict.fromkeys(found))
