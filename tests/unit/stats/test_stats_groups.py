"""Diagnosis chapters and groups of the sick-leave statistics: ICD-10-SE's chapters and blocks (avsnitt), named in
Swedish (services/stats/domain.py classify, services/stats/reports.py)."""

from __future__ import annotations

import pytest

from services.stats.domain import UNKNOWN, classify
from services.stats.reports import CHAPTERS, GROUPS, REPORTS, group_label


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("F43.8A", ("F438A", "V", "F40-F48")),
        ("S72.00", ("S7200", "XIX", "S70-S79")),
        ("M54.5", ("M545", "XIII", "M50-M54")),
        ("A02-P", ("A02-P", "I", "A00-A09")),  # KSH97-P: its category's block
        ("O49.0", ("O490", "XV", UNKNOWN)),  # a national category between blocks
        ("XX1", ("XX1", UNKNOWN, UNKNOWN)),
    ],
)
def test_classify_gives_the_chapter_and_the_icd10se_block(code: str, expected: tuple[str, str, str]) -> None:
    assert classify(code) == expected


def test_the_group_table_lists_every_block_with_its_swedish_name() -> None:
    spec = REPORTS["diagnosis-group"]
    assert spec.fixed_rows == GROUPS
    assert len(GROUPS) == 264 + 1
    assert GROUPS[-1] == UNKNOWN
    assert spec.label("F40-F48") == "F40-F48 Neurotiska, stressrelaterade och somatoforma syndrom"
    assert spec.label("M50-M54") == "M50-M54 Andra ryggsjukdomar"
    assert spec.label(UNKNOWN) == "Okänd"
    assert group_label("M40-M54") == "M40-M54"  # a group of an older classification, until the rebuild
    assert all(spec.label(g) != g for g in GROUPS)


def test_the_chapter_table_is_in_swedish() -> None:
    spec = REPORTS["diagnosis-chapter"]
    assert spec.label("V") == "V Psykiska sjukdomar och syndrom samt beteendestörningar"
    assert len(CHAPTERS) == 22
