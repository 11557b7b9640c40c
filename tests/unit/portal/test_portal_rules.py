"""The portal's pure rules: employer copy, badges, grouping by year, when sending is offered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.portal.domain import (
    DispatchView,
    EmployerCopyError,
    badges,
    employer_copy,
    employer_optional_fields,
    group_by_year,
    may_send,
)
from services.portal.views import content_of, content_sections

NOW = datetime(2026, 5, 28, 12, tzinfo=UTC)


def lisjp(**extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "assessment_basis": [{"kind": "UNDERSOKNING", "date": "2026-05-20"}],
        "occupations": ["NUVARANDE_ARBETE"],
        "occupation_text": "Lärare",
        "diagnoses": [{"code": "F32.9", "description": "Depressiv episod"}],
        "functional_impairment": "Nedsatt koncentration",
        "activity_limitation": "Klarar inte undervisning",
        "ongoing_treatment": "Samtalsterapi",
        "sick_leave_periods": [{"degree": 50, "start": "2026-05-20", "end": "2026-06-10"}],
        "working_time_arrangement": {"recommended": True},
        "travel_to_work": False,
        "prognosis": {"kind": "ATER_X_ANTAL_DGR", "days": 60},
        "work_measures": ["ARBETSANPASSNING"],
        "wants_contact_with_fk": True,
        "contact_reason": "Planering",
    }
    content.update(extra)
    return content


def labels(cert_type: str, content: dict[str, Any]) -> set[str]:
    return {row.field for section in content_sections(content_of(cert_type, content)) for row in section.rows}


def test_lisjp_employer_copy_keeps_only_what_the_employer_needs_by_default() -> None:
    content = lisjp()
    optional = employer_optional_fields("LISJP", content)
    assert set(optional) == {"diagnoses", "functional_impairment", "activity_limitation", "ongoing_treatment",
                             "wants_contact_with_fk"}  # fmt: skip
    copy, left_out = employer_copy("LISJP", content, optional)
    assert left_out
    assert labels("LISJP", copy) == {
        "assessment_basis",
        "occupations",
        "occupation_text",
        "sick_leave_periods",
        "working_time_arrangement",
        "travel_to_work",
        "prognosis",
        "work_measures",
    }
    assert "contact_reason" not in copy  # goes with question 26


def test_mandatory_parts_cannot_be_left_out() -> None:
    for field in ("sick_leave_periods", "prognosis", "assessment_basis", "occupations", "work_measures"):
        with pytest.raises(EmployerCopyError):
            employer_copy("LISJP", lisjp(), [field])


def test_nothing_left_out_is_not_a_customised_copy() -> None:
    copy, left_out = employer_copy("LISJP", lisjp(), [])
    assert not left_out
    assert copy == lisjp()


def test_smittskydd_keeps_the_diagnosis() -> None:
    content = lisjp(contagious_disease_leave=True)
    assert "diagnoses" not in employer_optional_fields("LISJP", content)
    with pytest.raises(EmployerCopyError):
        employer_copy("LISJP", content, ["diagnoses"])
    ag = lisjp(contagious_disease_leave=True, diagnosis_to_employer=False)
    copy, _ = employer_copy("AG7804", ag, [])
    assert copy["diagnoses"]


def test_ag7804_diagnosis_only_if_the_patient_wants_it_passed_on_and_may_still_be_hidden() -> None:
    wanted = lisjp(diagnosis_to_employer=True)
    assert employer_optional_fields("AG7804", wanted) == ["diagnoses"]
    assert employer_copy("AG7804", wanted, [])[0]["diagnoses"]
    hidden, left_out = employer_copy("AG7804", wanted, ["diagnoses"])
    assert "diagnoses" not in hidden
    assert left_out
    not_wanted = lisjp(diagnosis_to_employer=False)
    copy, left_out = employer_copy("AG7804", not_wanted, [])
    assert "diagnoses" not in copy
    assert left_out
    with pytest.raises(EmployerCopyError):
        employer_copy("AG7804", wanted, ["functional_impairment"])  # only the diagnosis is optional for AG7804


def test_badges() -> None:
    fresh = NOW - timedelta(days=3)
    old = NOW - timedelta(days=15)
    assert badges(certificate_type="LISJP", signed_at=fresh, replaced=False, send=None, now=NOW) == [
        "Nytt",
        "Ej skickat",
    ]
    assert badges(certificate_type="LISJP", signed_at=old, replaced=False, send="SUCCEEDED", now=NOW) == ["Skickat"]
    assert badges(certificate_type="LISJP", signed_at=old, replaced=True, send=None, now=NOW) == [
        "Ersatt",
        "Ej skickat",
    ]
    assert badges(certificate_type="LISJP", signed_at=old, replaced=False, send="REQUESTED", now=NOW) == ["Skickas…"]
    assert badges(certificate_type="AG7804", signed_at=fresh, replaced=False, send=None, now=NOW) == ["Nytt"]
    assert badges(certificate_type="LISJP", signed_at=NOW - timedelta(days=14), replaced=False, send="FAILED",
                  now=NOW) == ["Nytt", "Ej skickat"]  # fmt: skip


def test_grouped_by_year_newest_first() -> None:
    items = [{"id": i, "signed_at": datetime(y, m, 1, tzinfo=UTC)} for i, (y, m) in
             enumerate([(2024, 3), (2026, 1), (2024, 11), (2025, 6), (2026, 4)])]  # fmt: skip
    groups = group_by_year(items)
    assert [year for year, _ in groups] == [2026, 2025, 2024]
    assert [i["id"] for i in groups[0][1]] == [4, 1]
    assert [i["id"] for i in groups[2][1]] == [2, 0]


def test_sending_is_offered_once_and_not_for_replaced_or_employer_types() -> None:
    at = NOW
    assert may_send("LISJP", False, [])
    assert not may_send("AG7804", False, [])
    assert not may_send("LISJP", True, [])
    assert not may_send("LISJP", False, [DispatchView("FKASSA", "REQUESTED", None, at)])
    assert not may_send("LISJP", False, [DispatchView("FKASSA", "SUCCEEDED", None, at)])
    assert may_send("LISJP", False, [DispatchView("FKASSA", "FAILED", "Tidsgräns", at)])


def diagnosis_rows(cert_type: str, content: dict[str, Any]) -> list[tuple[str, str]]:
    sections = content_sections(content_of(cert_type, content))
    return [(row.label, row.value) for section in sections for row in section.rows if row.field == "diagnoses"]


def test_a_diagnosis_is_shown_with_its_swedish_name_and_the_doctors_description() -> None:
    content = lisjp(diagnoses=[{"code": "F438A", "description": "Utmattning efter lång tids stress"},
                               {"code": "S72.00"}])  # fmt: skip
    assert diagnosis_rows("LISJP", content) == [
        ("Huvuddiagnos", "F43.8A Utmattningssyndrom. Läkarens beskrivning: Utmattning efter lång tids stress"),
        ("Bidiagnos", "S72.00 Kollumfraktur-sluten"),
    ]


def test_a_ksh97p_diagnosis_names_its_code_system() -> None:
    content = lisjp(diagnoses=[{"code": "A02-P", "code_system": "1.2.752.116.1.3.1.4.1"}])
    assert diagnosis_rows("LISJP", content) == [("Huvuddiagnos", "A02-P Salmonellainfektioner (KSH97-P)")]


def test_a_code_not_in_the_list_is_shown_as_written() -> None:
    content = lisjp(diagnoses=[{"code": "J98.9X", "description": "Luftvägsbesvär"}])  # accepted by an earlier rule
    assert diagnosis_rows("LISJP", content) == [("Huvuddiagnos", "J98.9X. Läkarens beskrivning: Luftvägsbesvär")]


def test_the_employer_copy_that_keeps_the_diagnosis_shows_its_name() -> None:
    copy, _ = employer_copy("AG7804", lisjp(diagnosis_to_employer=True, diagnoses=[{"code": "F43.8A"}]), [])
    assert diagnosis_rows("AG7804", copy) == [("Huvuddiagnos", "F43.8A Utmattningssyndrom")]
