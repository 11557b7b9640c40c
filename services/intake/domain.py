"""Intake's rules, pure: what makes a certificate acceptable, and what a delivery or revocation means."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from schemas import codesystems
from schemas.certificate import (
    Ag7804Certificate,
    BasisKind,
    Diagnosis,
    LisjpCertificate,
    LisjpContent,
    OccupationKind,
    PrognosisKind,
    SickLeavePeriod,
    WorkMeasure,
)
from schemas.identifiers import InvalidIdentifier, PersonalNumber, check_hsa_id, parse_personal_number
from services.kit.swedish import swedish_date

AcceptedCertificate = LisjpCertificate | Ag7804Certificate


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, at a dotted path into the body."""

    path: str
    message: str


class InvalidCertificate(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def validate(
    cert: AcceptedCertificate,
    now: datetime,
    clock_skew: timedelta,
    document: dict[str, Any] | None = None,
    document_json: bytes | None = None,
) -> PersonalNumber:
    """Check every rule of DOMAIN.md; return the patient's personnummer or raise with every problem found.

    `document` is the certificate as JSON data and `document_json` that data serialised by orjson, when the caller
    has them already (they are checked for NUL characters).
    """
    problems: list[Problem] = []
    personnummer: PersonalNumber | None = None
    try:
        personnummer = parse_personal_number(cert.patient.personnummer, swedish_date(now))
    except InvalidIdentifier as exc:
        problems.append(Problem("patient.personnummer", str(exc)))
    if (problem := time_problem("signed_at", cert.signed_at, now, clock_skew)) is not None:
        problems.append(problem)
    for path, hsa_id in (
        ("issuer.hsa_id", cert.issuer.hsa_id),
        ("care_unit.hsa_id", cert.care_unit.hsa_id),
        ("care_unit.care_provider.hsa_id", cert.care_unit.care_provider.hsa_id),
    ):
        try:
            check_hsa_id(hsa_id)
        except InvalidIdentifier as exc:
            problems.append(Problem(path, str(exc)))
    if cert.relation is not None and cert.relation.certificate_id == cert.id:
        problems.append(Problem("relation.certificate_id", "a certificate cannot relate to itself"))
    problems += _content_problems(cert)
    if document_json is None:
        document = cert.model_dump(mode="json") if document is None else document
        document_json = orjson.dumps(document)
    # orjson writes a NUL as \u0000, so a certificate without that in its JSON has none (the usual case: one search
    # instead of a walk over every value); one with it is walked for the fields (a text of the six characters
    # "\u0000" is written "\\u0000", found here and cleared by the walk).
    if b"\\u0000" in document_json:
        document = cert.model_dump(mode="json") if document is None else document
        problems += [Problem(path, "contains a NUL character") for path in _paths_with_nul(document, "")]
    if problems or personnummer is None:
        raise InvalidCertificate(problems)
    return personnummer


# No certificate Mina intyg takes was signed (or revoked) before electronic certificates existed: an earlier time is
# a typing or clock error (year 1, 1970), and far-off years overflow the date arithmetic of the rules.
EARLIEST_PLAUSIBLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def time_problem(path: str, value: datetime, now: datetime, clock_skew: timedelta) -> Problem | None:
    """Whether a signing or revocation time is implausible: before 2000, in the future, or not a time in UTC."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 or 9999-12-31T23:00-02:00: no such time in UTC
        return Problem(path, "is outside the years a date can have")
    if utc < EARLIEST_PLAUSIBLE_TIME:
        return Problem(path, f"lies before {EARLIEST_PLAUSIBLE_TIME:%Y-%m-%d}, which is not plausible")
    if utc > now + clock_skew:
        return Problem(path, "lies in the future")
    return None


def _paths_with_nul(value: object, path: str) -> Iterator[str]:
    """PostgreSQL cannot store NUL in text: such input is refused rather than failing on save."""
    if isinstance(value, str) and "\x00" in value:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_with_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths_with_nul(item, f"{path}.{i}")


def _content_problems(cert: AcceptedCertificate) -> list[Problem]:
    content = cert.content
    try:
        signed_on = swedish_date(cert.signed_at)  # the examination date a doctor in Sweden wrote
    except OverflowError:  # a signing time at the edge of the calendar (refused as signed_at already)
        signed_on = cert.signed_at.date()
    problems = list(_prefixed("content", _lisjp_problems(content, signed_on, diagnoses_required=True)))
    if isinstance(cert, Ag7804Certificate):
        problems = [p for p in problems if p.path != "content.diagnoses"]
        wanted = cert.content.diagnosis_to_employer
        if wanted is None:
            problems.append(Problem("content.diagnosis_to_employer", "question 100 must be answered"))
        elif wanted and not content.diagnoses:
            problems.append(Problem("content.diagnoses", "required when the diagnosis is passed on (question 100)"))
        elif not wanted and content.diagnoses:
            problems.append(
                Problem("content.diagnoses", "must be left out when the diagnosis is not passed on (question 100)")
            )
    return problems


def _prefixed(prefix: str, problems: Iterable[Problem]) -> Iterator[Problem]:
    for p in problems:
        yield Problem(f"{prefix}.{p.path}", p.message)


def _lisjp_problems(c: LisjpContent, signed_on: date, *, diagnoses_required: bool) -> Iterator[Problem]:
    """The rules of LISJP's questions; AG7804 shares them."""
    contagious = c.contagious_disease_leave
    mandatory = {
        "assessment_basis": (c.assessment_basis, "question 1 (basis for the assessment)"),
        "occupations": (c.occupations, "question 28 (occupation)"),
        "functional_impairment": (c.functional_impairment, "question 35 (functional impairment)"),
        "activity_limitation": (c.activity_limitation, "question 17 (activity limitation)"),
        "prognosis": (c.prognosis, "question 39 (prognosis)"),
        "work_measures": (c.work_measures, "question 40 (work-related measures)"),
    }
    if not contagious:
        for field, (value, question) in mandatory.items():
            if not value:
                yield Problem(field, f"{question} is required unless question 27 (smittskydd) is set")

    if not c.diagnoses:
        if diagnoses_required:
            yield Problem("diagnoses", "question 6: a main diagnosis is required")
    else:
        yield from _diagnosis_problems(c.diagnoses)

    yield from _basis_problems(c, signed_on)

    if c.occupations:
        if len(set(c.occupations)) != len(c.occupations):
            yield Problem("occupations", "an occupation is given more than once")
        if OccupationKind.CURRENT_WORK in c.occupations and not c.occupation_text:
            yield Problem("occupation_text", "question 29 is required when the patient has current work")

    if not c.sick_leave_periods:
        yield Problem("sick_leave_periods", "question 32: at least one sick-leave period is required")
    else:
        yield from _period_problems(c.sick_leave_periods)
        yield from _period_bound_problems(c.sick_leave_periods, signed_on)
        if any(p.degree < 100 for p in c.sick_leave_periods) and c.working_time_arrangement is None:
            yield Problem(
                "working_time_arrangement",
                "question 33 is required when a period is below 100 % (helt nedsatt)",
            )

    if c.prognosis is not None:
        needs_days = c.prognosis.kind is PrognosisKind.BACK_WITHIN_DAYS
        if needs_days and c.prognosis.days is None:
            yield Problem("prognosis.days", "required with ATER_X_ANTAL_DGR (30, 60, 90, 180 or 365)")
        if not needs_days and c.prognosis.days is not None:
            yield Problem("prognosis.days", "only allowed with ATER_X_ANTAL_DGR")

    if c.work_measures:
        if len(set(c.work_measures)) != len(c.work_measures):
            yield Problem("work_measures", "a measure is given more than once")
        if WorkMeasure.NOT_RELEVANT in c.work_measures and len(c.work_measures) > 1:
            yield Problem("work_measures", "EJ_AKTUELLT (not relevant) excludes every other measure")

    if c.contact_reason and not c.wants_contact_with_fk:
        yield Problem("contact_reason", "only allowed when contact with Försäkringskassan is wanted")


def _diagnosis_problems(diagnoses: list[Diagnosis]) -> Iterator[Problem]:
    """Each code in the list of its code system (by OID), the form's rules for question 6, and one code system."""
    systems = {d.code_system for d in diagnoses}
    if len(systems) > 1:
        named = ", ".join(
            f"diagnoses.{i}.code_system is {codesystems.CODE_SYSTEM_NAMES.get(d.code_system, d.code_system)}"
            for i, d in enumerate(diagnoses)
        )
        yield Problem("diagnoses", f"a certificate's diagnoses use one code system: {named}")
    seen: set[str] = set()
    for i, diagnosis in enumerate(diagnoses):
        try:
            entry = codesystems.lookup(diagnosis.code_system, diagnosis.code)
        except codesystems.UnknownCodeSystem as exc:
            yield Problem(f"diagnoses.{i}.code_system", str(exc))
            continue
        except codesystems.UnknownCode as exc:
            yield Problem(f"diagnoses.{i}.code", str(exc))
            continue
        # The lists hold codes of at most 5 characters, so the form's limit needs no rule of its own; ICD-10-SE
        # lists F chapter categories (F32) that the form does not take.
        if entry.code.startswith("F") and len(entry.code) < 4:
            yield Problem(f"diagnoses.{i}.code", "codes in chapter F need at least 4 characters")
            continue
        if entry.code in seen:
            yield Problem(f"diagnoses.{i}.code", "the same diagnosis is given twice")
        seen.add(entry.code)


def _basis_problems(c: LisjpContent, signed_on: date) -> Iterator[Problem]:
    if not c.assessment_basis:
        return
    kinds = [b.kind for b in c.assessment_basis]
    if len(set(kinds)) != len(kinds):
        yield Problem("assessment_basis", "each kind of basis may be given once")
    for i, basis in enumerate(c.assessment_basis):
        if basis.date > signed_on:
            yield Problem(f"assessment_basis.{i}.date", "lies after the signing date")
        if basis.kind is BasisKind.OTHER and not basis.description:
            yield Problem(f"assessment_basis.{i}.description", "required when the basis is ANNAT (other)")


def _period_problems(periods: list[SickLeavePeriod]) -> Iterator[Problem]:
    for i, period in enumerate(periods):
        if period.end < period.start:
            yield Problem(f"sick_leave_periods.{i}.end", "ends before it starts")
    degrees = [p.degree for p in periods]
    if len(set(degrees)) != len(degrees):
        yield Problem("sick_leave_periods", "two periods have the same degree")
    ordered = sorted(enumerate(periods), key=lambda ip: ip[1].start)
    for (_, earlier), (j, later) in itertools.pairwise(ordered):
        if later.start <= earlier.end:
            yield Problem(f"sick_leave_periods.{j}", "overlaps another period")


# Plausible bounds of a sick-leave period around the signing day: a certificate may be backdated (the doctor saw
# the patient earlier, or the sick leave began before the visit) and runs ahead for a while, but a period starting
# years before the signing or ending years after it is a typing error, and statistics would count it forever.
MAX_PERIOD_START_BEFORE_SIGNING = timedelta(days=366)
MAX_PERIOD_END_AFTER_SIGNING = timedelta(days=366)


def _period_bound_problems(periods: list[SickLeavePeriod], signed_on: date) -> Iterator[Problem]:
    for i, period in enumerate(periods):
        # Differences, not shifted dates: a signing day near year 1 or 9999 must not overflow.
        if signed_on - period.start > MAX_PERIOD_START_BEFORE_SIGNING:
            yield Problem(f"sick_leave_periods.{i}.start", "starts more than a year before the signing date")
        if period.end - signed_on > MAX_PERIOD_END_AFTER_SIGNING:
            yield Problem(f"sick_leave_periods.{i}.end", "ends more than a year after the signing date")


class ReceiveOutcome(StrEnum):
    ACCEPTED = "received"
    ALREADY_RECEIVED = "already_received"
    CONFLICT = "conflict"
    NOT_CONNECTED = "care_unit_not_connected"


def decide_redelivery(stored_patient: str, incoming_patient: str) -> ReceiveOutcome:
    """A certificate id seen before: the same patient is a harmless retry, another patient a conflict."""
    return ReceiveOutcome.ALREADY_RECEIVED if stored_patient == incoming_patient else ReceiveOutcome.CONFLICT


class RevokeOutcome(StrEnum):
    REVOKED = "revoked"
    ALREADY_REVOKED = "already_revoked"
    UNKNOWN = "unknown"


def decide_revoke(known: bool, already_revoked: bool) -> RevokeOutcome:
    """An unknown id may be a revoke that overtook its certificate: the sender must retry later."""
    if not known:
        return RevokeOutcome.UNKNOWN
    return RevokeOutcome.ALREADY_REVOKED if already_revoked else RevokeOutcome.REVOKED
