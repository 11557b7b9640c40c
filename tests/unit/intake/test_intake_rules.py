"""Intake's acceptance rules for LISJP and AG7804 (services.intake.domain), one test per rule of DOMAIN.md."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from stdnum import luhn

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER, RelationKind
from services.intake.domain import (
    AcceptedCertificate,
    InvalidCertificate,
    Problem,
    ReceiveOutcome,
    RevokeOutcome,
    decide_redelivery,
    decide_revoke,
    validate,
)

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
SIGNED = NOW - timedelta(hours=1)
SKEW = timedelta(minutes=5)
DAY = SIGNED.date()


def iso(day: date) -> str:
    return day.isoformat()


def valid_content() -> dict[str, Any]:
    """A LISJP content that answers every question in the simplest valid way."""
    return {
        "assessment_basis": [{"kind": "UNDERSOKNING", "date": iso(DAY)}],
        "occupations": ["NUVARANDE_ARBETE"],
        "occupation_text": "Lärare",
        "diagnoses": [{"code": "F32.1"}],
        "functional_impairment": "Nedsatt koncentrationsförmåga.",
        "activity_limitation": "Klarar inte längre fokus.",
        "sick_leave_periods": [{"degree": 100, "start": iso(DAY), "end": iso(DAY + timedelta(days=13))}],
        "prognosis": {"kind": "STOR_SANNOLIKHET"},
        "work_measures": ["EJ_AKTUELLT"],
    }


def _base(cert_type: str) -> dict[str, Any]:
    body = CertificateFactory(seed=4711).certificate(cert_type, now=NOW)
    body["signed_at"] = SIGNED.isoformat()
    body["content"] = valid_content()
    if cert_type == "AG7804":
        body["content"]["diagnosis_to_employer"] = True
    return body


BASE = {"LISJP": _base("LISJP"), "AG7804": _base("AG7804")}


def body(cert_type: str = "LISJP", /, *, drop: Iterable[str] = (), **content: Any) -> dict[str, Any]:
    """A fresh valid body of `cert_type` with content fields replaced (`content`) or removed (`drop`)."""
    result = copy.deepcopy(BASE[cert_type])
    result["content"].update(content)
    for name in drop:
        result["content"].pop(name, None)
    return result


def parse(raw: dict[str, Any]) -> AcceptedCertificate:
    return CERTIFICATE_ADAPTER.validate_python(raw)


def problems(raw: dict[str, Any], now: datetime = NOW) -> list[Problem]:
    """Every problem validate() reports, or [] when the certificate is accepted."""
    cert = parse(raw)
    try:
        validate(cert, now, SKEW)
    except InvalidCertificate as exc:
        found = exc.problems
    else:
        return []
    assert found, "InvalidCertificate must carry at least one problem"
    return found


def paths(raw: dict[str, Any]) -> list[str]:
    return sorted(p.path for p in problems(raw))


def period(degree: int, start: date, days: int) -> dict[str, Any]:
    return {"degree": degree, "start": iso(start), "end": iso(start + timedelta(days=days - 1))}


ARRANGEMENT: dict[str, Any] = {"working_time_arrangement": {"recommended": True}}


# --- the base certificates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cert_type", ["LISJP", "AG7804"])
def test_valid_certificate_returns_the_patients_personnummer(cert_type: str) -> None:
    cert = parse(body(cert_type))

    personnummer = validate(cert, NOW, SKEW)

    assert personnummer.digits == cert.patient.personnummer


def test_ag7804_without_diagnosis_for_the_employer_is_valid() -> None:
    assert paths(body("AG7804", drop=["diagnoses"], diagnosis_to_employer=False)) == []


# --- header rules --------------------------------------------------------------------------------------------


def _with_personnummer(value: str) -> dict[str, Any]:
    raw = body()
    raw["patient"]["personnummer"] = value
    return raw


def test_invalid_personnummer() -> None:
    good = BASE["LISJP"]["patient"]["personnummer"]
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)

    assert paths(_with_personnummer(wrong)) == ["patient.personnummer"]


def test_personnummer_born_after_signing_day_is_refused() -> None:
    nine = "260317980"  # born the day after NOW
    assert paths(_with_personnummer(f"20{nine}{luhn.calc_check_digit(nine)}")) == ["patient.personnummer"]


def test_samordningsnummer_is_accepted() -> None:
    assert paths(_with_personnummer("19850372-2384")) == []


@pytest.mark.parametrize(
    ("signed_at", "ok"),
    [
        (NOW, True),
        (NOW + SKEW, True),
        (NOW + SKEW - timedelta(seconds=1), True),
        (NOW + SKEW + timedelta(seconds=1), False),
        (NOW + timedelta(days=2), False),
    ],
)
def test_signed_at_may_not_lie_in_the_future_beyond_clock_skew(signed_at: datetime, ok: bool) -> None:
    raw = body()
    raw["signed_at"] = signed_at.isoformat()

    assert paths(raw) == ([] if ok else ["signed_at"])


def test_signed_at_in_another_offset_is_compared_as_an_instant() -> None:
    raw = body()
    raw["signed_at"] = "2026-03-16T13:04:00+01:00"  # 12:04 UTC, within the skew

    assert paths(raw) == []


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("issuer",), "issuer.hsa_id"),
        (("care_unit",), "care_unit.hsa_id"),
        (("care_unit", "care_provider"), "care_unit.care_provider.hsa_id"),
    ],
)
@pytest.mark.parametrize("bad", ["SE232100001615CQ", "XX2321000016-15CQ", "SE2321000016-", "SE21000016-15CQ"])
def test_bad_hsa_ids(where: tuple[str, ...], path: str, bad: str) -> None:
    raw = body()
    target = raw
    for key in where:
        target = target[key]
    target["hsa_id"] = bad

    assert paths(raw) == [path]


def test_hsa_id_longer_than_31_characters_is_refused_by_shape() -> None:
    raw = body()
    raw["issuer"]["hsa_id"] = "SE2321000016-" + "X" * 19

    with pytest.raises(ValidationError, match="hsa_id"):
        parse(raw)


def test_relation_to_itself_is_refused() -> None:
    raw = body()
    raw["relation"] = {"kind": RelationKind.REPLACES.value, "certificate_id": raw["id"]}

    assert paths(raw) == ["relation.certificate_id"]


@pytest.mark.parametrize("kind", list(RelationKind))
def test_relation_to_another_certificate_is_fine(kind: RelationKind) -> None:
    raw = body()
    raw["relation"] = {"kind": kind.value, "certificate_id": "earlier-1"}

    assert paths(raw) == []


@pytest.mark.parametrize("where", ["functional_impairment", "patient"])
def test_nul_characters_are_refused(where: str) -> None:
    raw = body()
    if where == "patient":
        raw["patient"]["given_name"] = "An\x00na"
        expected = "patient.given_name"
    else:
        raw["content"]["functional_impairment"] = "Trött\x00"
        expected = "content.functional_impairment"

    assert paths(raw) == [expected]


def test_a_text_of_backslash_u0000_is_not_a_nul() -> None:
    raw = body()
    raw["content"]["functional_impairment"] = "Trött \\u0000 (as typed)"

    assert paths(raw) == []


def test_nul_characters_are_found_in_the_callers_serialised_document_too() -> None:
    cert = parse(body())
    document = cert.model_dump(mode="json")
    validate(cert, NOW, SKEW, document, orjson.dumps(document))
    document["content"]["functional_impairment"] = "Trött\x00"
    broken = CERTIFICATE_ADAPTER.validate_python(document)
    with pytest.raises(InvalidCertificate) as raised:
        validate(broken, NOW, SKEW, document, orjson.dumps(document))
    assert [p.path for p in raised.value.problems] == ["content.functional_impairment"]


# --- mandatory questions -------------------------------------------------------------------------------------

MANDATORY_UNLESS_27 = {
    "assessment_basis": "1",
    "occupations": "28",
    "functional_impairment": "35",
    "activity_limitation": "17",
    "prognosis": "39",
    "work_measures": "40",
}


@pytest.mark.parametrize("cert_type", ["LISJP", "AG7804"])
@pytest.mark.parametrize("field", list(MANDATORY_UNLESS_27))
def test_question_is_required_without_smittskydd(cert_type: str, field: str) -> None:
    found = problems(body(cert_type, drop=[field]))

    assert [p.path for p in found] == [f"content.{field}"]
    assert f"question {MANDATORY_UNLESS_27[field]} " in found[0].message


@pytest.mark.parametrize("field", ["assessment_basis", "occupations", "work_measures"])
def test_empty_list_counts_as_missing(field: str) -> None:
    assert paths(body(**{field: []})) == [f"content.{field}"]


@pytest.mark.parametrize("cert_type", ["LISJP", "AG7804"])
def test_smittskydd_makes_those_questions_optional(cert_type: str) -> None:
    raw = body(cert_type, drop=[*MANDATORY_UNLESS_27, "occupation_text"], contagious_disease_leave=True)

    assert paths(raw) == []


@pytest.mark.parametrize("field", ["diagnoses", "sick_leave_periods"])
def test_questions_6_and_32_are_required_even_with_smittskydd(field: str) -> None:
    assert paths(body(drop=[field], contagious_disease_leave=True)) == [f"content.{field}"]


def test_empty_period_list_counts_as_missing() -> None:
    assert paths(body(sick_leave_periods=[])) == ["content.sick_leave_periods"]


# --- diagnoses (question 6) ----------------------------------------------------------------------------------


def test_unknown_diagnosis_code() -> None:
    assert paths(body(diagnoses=[{"code": "J98.99"}])) == ["content.diagnoses.0.code"]


def test_secondary_diagnosis_is_checked_too() -> None:
    assert paths(body(diagnoses=[{"code": "F32.1"}, {"code": "M54.5"}, {"code": "XX1"}])) == [
        "content.diagnoses.2.code"
    ]


def test_f_chapter_three_character_code_is_refused() -> None:
    found = problems(body(diagnoses=[{"code": "F32"}]))

    assert [p.path for p in found] == ["content.diagnoses.0.code"]
    assert "chapter F" in found[0].message


def test_national_extension_is_accepted() -> None:
    assert paths(body(diagnoses=[{"code": "F43.8A"}, {"code": "M54.5"}])) == []


def test_same_diagnosis_twice_in_different_spellings() -> None:
    found = problems(body(diagnoses=[{"code": "F32.9"}, {"code": "f329"}]))

    assert [p.path for p in found] == ["content.diagnoses.1.code"]
    assert "twice" in found[0].message


ICD10SE = "1.2.752.116.1.1.1.1.3"
KSH97P = "1.2.752.116.1.3.1.4.1"


@pytest.mark.parametrize("code", ["F43.8A", "F438A", "S72.00", "S7200"])
def test_icd10se_fifth_character_codes_are_accepted(code: str) -> None:
    assert paths(body(diagnoses=[{"code": code}])) == []
    assert paths(body(diagnoses=[{"code": code, "code_system": ICD10SE}])) == []


def test_a_code_not_in_icd10se_is_refused_and_named() -> None:
    found = problems(body(diagnoses=[{"code": "F43.8Z"}]))

    assert [(p.path, p.message) for p in found] == [("content.diagnoses.0.code", "F43.8Z is not a code in ICD-10-SE")]


@pytest.mark.parametrize("code", ["A00-", "A02-P", "F43.8A", "F32-"])
def test_ksh97p_codes_are_accepted_under_their_oid(code: str) -> None:
    assert paths(body(diagnoses=[{"code": code, "code_system": KSH97P}])) == []


def test_a_ksh97p_code_under_icd10se_is_refused_saying_where_it_belongs() -> None:
    found = problems(body(diagnoses=[{"code": "A02-P"}]))

    assert [p.path for p in found] == ["content.diagnoses.0.code"]
    assert "not a code in ICD-10-SE (it is one in KSH97-P" in found[0].message


def test_an_icd10se_only_code_under_ksh97p_is_refused() -> None:
    found = problems(body(diagnoses=[{"code": "S72.00", "code_system": KSH97P}]))

    assert [p.path for p in found] == ["content.diagnoses.0.code"]
    assert "not a code in KSH97-P" in found[0].message


def test_a_certificate_mixing_code_systems_is_refused_naming_the_paths() -> None:
    found = problems(body(diagnoses=[{"code": "F43.8A"}, {"code": "A02-P", "code_system": KSH97P}]))

    assert [(p.path, p.message) for p in found] == [
        (
            "content.diagnoses",
            "a certificate's diagnoses use one code system: diagnoses.0.code_system is ICD-10-SE, "
            "diagnoses.1.code_system is KSH97-P",
        )
    ]


def test_an_unknown_code_system_is_refused_at_its_path() -> None:
    found = problems(body(diagnoses=[{"code": "F43.8A", "code_system": "1.2.3.4"}]))

    assert [p.path for p in found] == ["content.diagnoses.0.code_system"]
    assert "1.2.3.4 is not a known code system" in found[0].message


def test_a_code_system_that_is_no_oid_is_refused_by_shape() -> None:
    with pytest.raises(ValidationError, match="code_system"):
        parse(body(diagnoses=[{"code": "F43.8A", "code_system": "ICD-10-SE"}]))


def test_the_same_ksh97p_diagnosis_twice() -> None:
    found = problems(
        body(diagnoses=[{"code": "A02-P", "code_system": KSH97P}, {"code": "a02-p", "code_system": KSH97P}])
    )

    assert [p.path for p in found] == ["content.diagnoses.1.code"]
    assert "twice" in found[0].message


def test_at_most_three_diagnoses_by_shape() -> None:
    codes = ["F32.1", "M54.5", "J06.9", "S83.5"]

    with pytest.raises(ValidationError, match="diagnoses"):
        parse(body(diagnoses=[{"code": c} for c in codes]))


def test_code_longer_than_six_characters_is_refused_by_shape() -> None:
    with pytest.raises(ValidationError, match="code"):
        parse(body(diagnoses=[{"code": "F32.912"}]))


# --- sick-leave periods (question 32) ------------------------------------------------------------------------


def test_period_ending_before_it_starts() -> None:
    raw = body(sick_leave_periods=[{"degree": 100, "start": iso(DAY), "end": iso(DAY - timedelta(days=1))}])

    assert paths(raw) == ["content.sick_leave_periods.0.end"]


def test_single_day_period_is_fine() -> None:
    assert paths(body(sick_leave_periods=[period(100, DAY, 1)])) == []


def test_same_degree_twice() -> None:
    raw = body(sick_leave_periods=[period(50, DAY, 7), period(50, DAY + timedelta(days=7), 7)], **ARRANGEMENT)

    assert paths(raw) == ["content.sick_leave_periods"]


def test_overlapping_periods() -> None:
    raw = body(sick_leave_periods=[period(100, DAY, 10), period(50, DAY + timedelta(days=5), 10)], **ARRANGEMENT)

    assert paths(raw) == ["content.sick_leave_periods.1"]


def test_period_starting_on_the_day_another_ends_overlaps() -> None:
    first = period(100, DAY, 7)
    second = {"degree": 50, "start": first["end"], "end": iso(DAY + timedelta(days=30))}

    assert paths(body(sick_leave_periods=[first, second], **ARRANGEMENT)) == ["content.sick_leave_periods.1"]


def test_period_starting_the_day_after_another_ends_is_fine() -> None:
    raw = body(sick_leave_periods=[period(100, DAY, 7), period(50, DAY + timedelta(days=7), 7)], **ARRANGEMENT)

    assert paths(raw) == []


def test_overlap_is_found_whatever_the_order() -> None:
    later, earlier = period(50, DAY + timedelta(days=5), 10), period(100, DAY, 10)

    assert paths(body(sick_leave_periods=[later, earlier], **ARRANGEMENT)) == ["content.sick_leave_periods.0"]


def test_unordered_non_overlapping_periods_are_fine() -> None:
    periods = [
        period(25, DAY + timedelta(days=21), 7),
        period(100, DAY, 7),
        period(50, DAY + timedelta(days=14), 7),
        period(75, DAY + timedelta(days=7), 7),
    ]

    assert paths(body(sick_leave_periods=periods, **ARRANGEMENT)) == []


def test_at_most_four_periods_by_shape() -> None:
    periods = [period(d, DAY + timedelta(days=7 * i), 7) for i, d in enumerate([100, 75, 50, 25, 100])]

    with pytest.raises(ValidationError, match="sick_leave_periods"):
        parse(body(sick_leave_periods=periods, **ARRANGEMENT))


@pytest.mark.parametrize("degree", [0, 30, 101])
def test_degree_outside_25_50_75_100_is_refused_by_shape(degree: int) -> None:
    with pytest.raises(ValidationError, match="degree"):
        parse(body(sick_leave_periods=[period(degree, DAY, 7)]))


# --- working-time arrangement (question 33) ------------------------------------------------------------------


@pytest.mark.parametrize("degree", [25, 50, 75])
def test_working_time_arrangement_required_below_100(degree: int) -> None:
    raw = body(sick_leave_periods=[period(100, DAY, 7), period(degree, DAY + timedelta(days=7), 7)])

    assert paths(raw) == ["content.working_time_arrangement"]
    assert paths(body(**raw["content"], **ARRANGEMENT)) == []


def test_working_time_arrangement_not_required_at_100() -> None:
    assert "working_time_arrangement" not in BASE["LISJP"]["content"]
    assert paths(body()) == []


def test_working_time_arrangement_still_required_with_smittskydd() -> None:
    raw = body(sick_leave_periods=[period(50, DAY, 7)], contagious_disease_leave=True)

    assert paths(raw) == ["content.working_time_arrangement"]


# --- prognosis (question 39) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [30, 60, 90, 180, 365])
def test_back_within_days_with_days(days: int) -> None:
    assert paths(body(prognosis={"kind": "ATER_X_ANTAL_DGR", "days": days})) == []


def test_back_within_days_needs_days() -> None:
    assert paths(body(prognosis={"kind": "ATER_X_ANTAL_DGR"})) == ["content.prognosis.days"]


@pytest.mark.parametrize("kind", ["STOR_SANNOLIKHET", "SANNOLIKT_EJ_ATERGA_TILL_SYSSELSATTNING", "PROGNOS_OKLAR"])
def test_other_prognoses_must_not_have_days(kind: str) -> None:
    assert paths(body(prognosis={"kind": kind})) == []
    assert paths(body(prognosis={"kind": kind, "days": 30})) == ["content.prognosis.days"]


# --- work-related measures (question 40) ---------------------------------------------------------------------


def test_not_relevant_excludes_other_measures() -> None:
    found = problems(body(work_measures=["EJ_AKTUELLT", "ARBETSTRANING"]))

    assert [p.path for p in found] == ["content.work_measures"]
    assert "EJ_AKTUELLT" in found[0].message


def test_measure_given_twice() -> None:
    found = problems(body(work_measures=["ARBETSTRANING", "ARBETSTRANING"]))

    assert [p.path for p in found] == ["content.work_measures"]
    assert "more than once" in found[0].message


def test_every_measure_except_not_relevant_together_is_fine() -> None:
    measures = [
        "ARBETSTRANING",
        "ARBETSANPASSNING",
        "SOKA_NYTT_ARBETE",
        "BESOK_ARBETSPLATS",
        "ERGONOMISK",
        "HJALPMEDEL",
        "KONTAKT_FHV",
        "OMFORDELNING",
        "OVRIGA_ATGARDER",
    ]
    assert paths(body(work_measures=measures)) == []


# --- occupation (questions 28 and 29) ------------------------------------------------------------------------


def test_current_work_needs_occupation_text() -> None:
    assert paths(body(drop=["occupation_text"])) == ["content.occupation_text"]


@pytest.mark.parametrize("occupation", ["ARBETSSOKANDE", "FORALDRALEDIG", "STUDIER"])
def test_other_occupations_need_no_text(occupation: str) -> None:
    assert paths(body(occupations=[occupation], drop=["occupation_text"])) == []


def test_occupation_given_twice() -> None:
    assert paths(body(occupations=["STUDIER", "STUDIER"])) == ["content.occupations"]


# --- basis for the assessment (question 1) -------------------------------------------------------------------


def test_basis_other_needs_a_description() -> None:
    basis = [{"kind": "UNDERSOKNING", "date": iso(DAY)}, {"kind": "ANNAT", "date": iso(DAY)}]

    assert paths(body(assessment_basis=basis)) == ["content.assessment_basis.1.description"]
    basis[1]["description"] = "Samtal med anhörig."
    assert paths(body(assessment_basis=basis)) == []


def test_basis_date_after_signing() -> None:
    basis = [{"kind": "UNDERSOKNING", "date": iso(DAY + timedelta(days=1))}]

    assert paths(body(assessment_basis=basis)) == ["content.assessment_basis.0.date"]


def test_basis_date_before_signing_is_fine() -> None:
    assert paths(body(assessment_basis=[{"kind": "JOURNALUPPGIFTER", "date": iso(DAY - timedelta(days=30))}])) == []


def test_basis_kind_given_twice() -> None:
    basis = [{"kind": "UNDERSOKNING", "date": iso(DAY)}, {"kind": "UNDERSOKNING", "date": iso(DAY)}]

    assert paths(body(assessment_basis=basis)) == ["content.assessment_basis"]


# --- contact with Försäkringskassan (question 26) ------------------------------------------------------------


def test_contact_reason_only_when_contact_is_wanted() -> None:
    assert paths(body(contact_reason="Behöver diskutera")) == ["content.contact_reason"]
    assert paths(body(contact_reason="Behöver diskutera", wants_contact_with_fk=True)) == []
    assert paths(body(wants_contact_with_fk=True)) == []


# --- AG7804 question 100 -------------------------------------------------------------------------------------


def test_ag7804_question_100_is_required() -> None:
    assert paths(body("AG7804", drop=["diagnosis_to_employer"])) == ["content.diagnosis_to_employer"]


def test_ag7804_diagnosis_required_when_passed_on() -> None:
    assert paths(body("AG7804", drop=["diagnoses"], diagnosis_to_employer=True)) == ["content.diagnoses"]


def test_ag7804_diagnosis_must_be_absent_when_not_passed_on() -> None:
    assert paths(body("AG7804", diagnosis_to_employer=False)) == ["content.diagnoses"]


def test_ag7804_diagnosis_codes_are_checked() -> None:
    assert paths(body("AG7804", diagnoses=[{"code": "F32"}])) == ["content.diagnoses.0.code"]


def test_lisjp_has_no_question_100() -> None:
    with pytest.raises(ValidationError, match="diagnosis_to_employer"):
        parse(body("LISJP", diagnosis_to_employer=True))


# --- every problem at once -----------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    raw = body(
        drop=["functional_impairment"],
        sick_leave_periods=[period(100, DAY, 10), period(50, DAY + timedelta(days=3), 10)],
        **ARRANGEMENT,
    )
    pnr = raw["patient"]["personnummer"]
    raw["patient"]["personnummer"] = pnr[:-1] + str((int(pnr[-1]) + 5) % 10)

    assert paths(raw) == ["content.functional_impairment", "content.sick_leave_periods.1", "patient.personnummer"]


def test_many_faults_in_one_certificate() -> None:
    raw = body(
        drop=["occupation_text", "activity_limitation"],
        diagnoses=[{"code": "F32"}, {"code": "J98.99"}],
        prognosis={"kind": "ATER_X_ANTAL_DGR"},
        work_measures=["EJ_AKTUELLT", "ERGONOMISK"],
        contact_reason="x",
        sick_leave_periods=[period(50, DAY, 7)],
    )
    raw["signed_at"] = (NOW + timedelta(days=1)).isoformat()
    raw["issuer"]["hsa_id"] = "nope"

    assert paths(raw) == [
        "content.activity_limitation",
        "content.contact_reason",
        "content.diagnoses.0.code",
        "content.diagnoses.1.code",
        "content.occupation_text",
        "content.prognosis.days",
        "content.work_measures",
        "content.working_time_arrangement",
        "issuer.hsa_id",
        "signed_at",
    ]


# --- property: overlapping periods ---------------------------------------------------------------------------

DEGREES = (25, 50, 75, 100)


@st.composite
def period_lists(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """1–4 (degree, start offset, length in days) with distinct degrees and end >= start."""
    count = draw(st.integers(min_value=1, max_value=4))
    degrees = draw(st.permutations(DEGREES))[:count]
    return [
        (degree, draw(st.integers(min_value=0, max_value=40)), draw(st.integers(min_value=1, max_value=20)))
        for degree in degrees
    ]


def _days(start: int, length: int) -> set[int]:
    return set(range(start, start + length))


@settings(max_examples=200, deadline=None)
@given(spec=period_lists())
def test_overlap_is_reported_iff_two_periods_share_a_day(spec: list[tuple[int, int, int]]) -> None:
    periods = [period(degree, DAY + timedelta(days=start), length) for degree, start, length in spec]
    overlapping = any(_days(s1, l1) & _days(s2, l2) for (_, s1, l1), (_, s2, l2) in itertools.combinations(spec, 2))

    found = problems(body(sick_leave_periods=periods, **ARRANGEMENT))

    overlap_problems = [p for p in found if p.message == "overlaps another period"]
    assert bool(overlap_problems) is overlapping
    assert all(p.path.startswith("content.sick_leave_periods.") for p in overlap_problems)
    assert [p for p in found if p not in overlap_problems] == []


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=4),
)
def test_every_backwards_period_is_reported(lengths: list[int]) -> None:
    # Periods 100 days apart never overlap, so only the direction of each one matters.
    periods = [
        {
            "degree": DEGREES[i],
            "start": iso(DAY + timedelta(days=100 * i)),
            "end": iso(DAY + timedelta(days=100 * i + n)),
        }
        for i, n in enumerate(lengths)
    ]

    found = paths(body(sick_leave_periods=periods, **ARRANGEMENT))

    assert found == sorted(f"content.sick_leave_periods.{i}.end" for i, n in enumerate(lengths) if n < 0)


# --- the platform simulator ----------------------------------------------------------------------------------


def test_simulator_certificates_are_all_valid() -> None:
    now = datetime.now(UTC)
    for seed in (1, 2, 3):
        factory = CertificateFactory(seed=seed)
        for _ in range(100):
            raw = factory.certificate(now=now)
            assert problems(raw, now) == [], raw


EXPECTED_FAULT_PATH = {
    "check_digit": "patient.personnummer",
    "missing_q35": "content.functional_impairment",
    "overlap": "content.sick_leave_periods.1",
    "unknown_icd": "content.diagnoses.0.code",
    "future": "signed_at",
}


def test_simulator_invalid_certificates_all_fail() -> None:
    now = datetime.now(UTC)
    faults: set[str] = set()
    for seed in (1, 2, 3):
        factory = CertificateFactory(seed=seed)
        for _ in range(50):
            raw, fault = factory.invalid_certificate()
            faults.add(fault)
            if fault == "bad_degree":
                with pytest.raises(ValidationError):
                    parse(raw)
                continue
            assert EXPECTED_FAULT_PATH[fault] in [p.path for p in problems(raw, now)], (fault, raw)
    assert faults == {*EXPECTED_FAULT_PATH, "bad_degree"}


# --- redelivery and revocation -------------------------------------------------------------------------------


def test_redelivery_for_the_same_patient_is_a_harmless_retry() -> None:
    assert decide_redelivery("191212121212", "191212121212") is ReceiveOutcome.ALREADY_RECEIVED


def test_redelivery_for_another_patient_is_a_conflict() -> None:
    assert decide_redelivery("191212121212", "198503722384") is ReceiveOutcome.CONFLICT


@pytest.mark.parametrize(
    ("known", "already_revoked", "outcome"),
    [
        (False, False, RevokeOutcome.UNKNOWN),
        (False, True, RevokeOutcome.UNKNOWN),
        (True, False, RevokeOutcome.REVOKED),
        (True, True, RevokeOutcome.ALREADY_REVOKED),
    ],
)
def test_revoke_outcomes(known: bool, already_revoked: bool, outcome: RevokeOutcome) -> None:
    assert decide_revoke(known, already_revoked) is outcome


# --- plausible bounds of a sick-leave period around the signing day ----------------------------------------


def test_period_starting_more_than_a_year_before_signing_is_refused() -> None:
    raw = body(sick_leave_periods=[period(100, DAY - timedelta(days=367), 14)])

    assert paths(raw) == ["content.sick_leave_periods.0.start"]


def test_period_ending_more_than_a_year_after_signing_is_refused() -> None:
    raw = body(sick_leave_periods=[period(100, DAY + timedelta(days=300), 70)])

    assert paths(raw) == ["content.sick_leave_periods.0.end"]


def test_periods_at_the_bounds_are_fine() -> None:
    earliest = period(100, DAY - timedelta(days=366), 7)
    latest = {"degree": 50, "start": iso(DAY + timedelta(days=300)), "end": iso(DAY + timedelta(days=366))}

    assert paths(body(sick_leave_periods=[earliest, latest], **ARRANGEMENT)) == []
