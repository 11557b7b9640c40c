"""The RIV-TA answers name our own rules' problems in Swedish: every fixed message the rules can give has a
Swedish text (read from the rules' source, so a new message without one fails here), and the composed ones too."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import schemas.identifiers
import services.intake.domain
from schemas import codesystems
from services.intake import svenska
from services.intake.domain import Problem, time_problem


def _messages(module: object, call: str, argument: int) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    found = set()
    for node in ast.walk(tree):
        named = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == call
        if named and len(node.args) > argument and isinstance(node.args[argument], ast.Constant):  # type: ignore[attr-defined]
            found.add(node.args[argument].value)  # type: ignore[attr-defined]
    return found


FIXED = sorted(_messages(services.intake.domain, "Problem", 1) | _messages(schemas.identifiers, "InvalidIdentifier", 0))


def test_the_rules_source_was_read() -> None:
    assert len(FIXED) >= 30


@pytest.mark.parametrize("english", FIXED)
def test_every_fixed_message_has_a_swedish_text(english: str) -> None:
    assert svenska.message(english) != english


def test_composed_messages_are_swedish() -> None:
    with pytest.raises(codesystems.UnknownCode) as unknown:
        codesystems.lookup(codesystems.ICD10SE, "F43.8Z")
    assert svenska.message(str(unknown.value)) == "F43.8Z är inte en kod i ICD-10-SE"
    early = time_problem("signed_at", datetime(1999, 1, 1, tzinfo=UTC), datetime.now(UTC), timedelta(minutes=5))
    assert early is not None
    assert svenska.problem(early) == "signeringstidpunkt: ligger före 2000-01-01, vilket inte är rimligt"


def test_places_name_the_question_and_the_instance() -> None:
    assert svenska.place("content.diagnoses.1.code") == "svar 6 (diagnos), nr 2"
    assert svenska.place("patient.personnummer") == "patient, person-id"
    assert svenska.place("care_unit.care_provider.hsa_id") == "vårdgivare, vardgivare-id"
    assert svenska.problem(Problem("content.sick_leave_periods.0.end", "ends before it starts")) == (
        "svar 32 (behov av sjukskrivning), nr 1: slutar innan den börjar"
    )
