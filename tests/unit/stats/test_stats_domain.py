"""Sick-leave cases, groupings and suppression (pure rules of services/stats/domain.py)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats.domain import (
    AGE_GROUPS,
    LENGTH_GROUPS,
    CountTable,
    Fact,
    age_group,
    classify,
    determined_cells,
    length_group,
    merge_cases,
    provider_cutoff,
    suppress,
    table_constraints,
    union_days,
)

D0 = date(2026, 1, 1)


def fact(
    cid: str,
    periods: list[tuple[int, int, int]],
    *,
    person: str = "p1",
    provider: str = "SE1-0001",
    signed: int = 0,
    age: int = 40,
    code: str = "F32.1",
    cert_type: str = "LISJP",
) -> Fact:
    plain, chapter, group = classify(code)
    return Fact(
        certificate_id=cid,
        pseudonym=person,
        cert_type=cert_type,
        provider=provider,
        county="01",
        sex="F",
        age=age,
        code=plain,
        chapter=chapter,
        group=group,
        signed_on=D0 + timedelta(days=signed),
        signed_at_us=signed * 86_400_000_000,
        periods=tuple(sorted((D0 + timedelta(days=s), D0 + timedelta(days=e), d) for s, e, d in periods)),
    )


def test_a_gap_of_five_days_merges_and_six_splits() -> None:
    # first period days 0–9; the next starts after a gap of exactly 5 days (10..14) on day 15
    merged = merge_cases([fact("a", [(0, 9, 100)]), fact("b", [(15, 20, 50)], signed=15)])
    assert len(merged) == 1
    assert merged[0].days == 16
    assert merged[0].degree == 50
    assert merged[0].certificates == 2
    split = merge_cases([fact("a", [(0, 9, 100)]), fact("b", [(16, 20, 50)], signed=16)])
    assert [c.days for c in split] == [10, 5]


def test_overlapping_and_unordered_periods_count_their_union() -> None:
    facts = [fact("late", [(10, 30, 25)], signed=10), fact("early", [(0, 14, 100)], signed=0)]
    [case] = merge_cases(reversed(facts))
    assert case.days == 31
    assert case.first_day == D0
    assert case.last_day == D0 + timedelta(days=30)
    assert case.degree == 25  # from the latest certificate


def test_two_care_providers_make_two_cases_and_age_is_the_highest() -> None:
    facts = [
        fact("a", [(0, 9, 100)], provider="SE1-0001", age=40),
        fact("b", [(5, 9, 100)], provider="SE2-0001", age=40),
        fact("c", [(10, 19, 100)], provider="SE1-0001", age=41, signed=10, code="M54.5"),
    ]
    cases = merge_cases(facts)
    assert sorted((c.provider, c.days, c.age) for c in cases) == [("SE1-0001", 20, 41), ("SE2-0001", 5, 40)]
    first = next(c for c in cases if c.provider == "SE1-0001")
    assert (first.code, first.chapter, first.group) == ("M545", "XIII", "M40-M54")


def test_certificates_outside_statistics_make_no_case() -> None:
    assert merge_cases([fact("a", [(0, 9, 100)], cert_type="AG7804")]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40), st.sampled_from([25, 50, 75, 100])), min_size=1,
                max_size=8), st.randoms())  # fmt: skip
def test_cases_do_not_depend_on_order_and_cover_each_day_once(raw: list[tuple[int, int, int]], rnd: object) -> None:
    facts = [fact(f"c{i}", [(s, s + n, d)], signed=s) for i, (s, n, d) in enumerate(raw)]
    shuffled = list(facts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    cases = merge_cases(facts)
    assert cases == merge_cases(shuffled)
    covered = {D0 + timedelta(days=s + k) for s, n, _ in raw for k in range(n + 1)}
    assert sum(c.days for c in cases) == len(covered)
    assert sum(c.certificates for c in cases) == len(facts)
    ordered = sorted(cases, key=lambda c: c.first_day)
    for before, after in itertools.pairwise(ordered):
        assert (after.first_day - before.last_day).days - 1 > 5  # cases are separated by more than 5 days


def test_union_days() -> None:
    assert union_days([(D0, D0 + timedelta(days=4)), (D0 + timedelta(days=2), D0 + timedelta(days=6))]) == 7
    assert union_days([(D0, D0), (D0 + timedelta(days=2), D0 + timedelta(days=2))]) == 2


def test_age_groups() -> None:
    assert [age_group(a) for a in (0, 15, 16, 20, 21, 25, 60, 61, 65, 66, 99)] == [
        "<16", "<16", "16–20", "16–20", "21–25", "21–25", "56–60", "61–65", "61–65", ">65", ">65"]  # fmt: skip
    assert AGE_GROUPS == ["<16", "16–20", "21–25", "26–30", "31–35", "36–40", "41–45", "46–50", "51–55", "56–60",
                          "61–65", ">65"]  # fmt: skip


def test_length_groups() -> None:
    cases = {1: 0, 14: 0, 15: 1, 30: 1, 31: 2, 60: 2, 61: 3, 90: 3, 91: 4, 180: 4, 181: 5, 364: 5, 365: 6,
             730: 6, 731: 7}  # fmt: skip
    for days, index in cases.items():
        assert length_group(days) == LENGTH_GROUPS[index], days


def test_provider_cutoff_applies_per_provider_and_sex_before_summing() -> None:
    contributions = [(0, 0, "A", 4), (0, 0, "B", 6), (0, 1, "A", 3), (0, 1, "A", 2), (1, 0, "B", 2)]
    table = provider_cutoff(contributions, rows=2, columns=2)
    assert table.kept == [[6, 5], [0, 0]]
    assert table.hidden == [[True, False], [True, False]]


def test_a_single_small_cell_takes_a_second_cell_with_it() -> None:
    published = suppress(CountTable([[3, 20], [30, 40]], [[False, False], [False, False]]), total_row=True,
                         total_column=True)  # fmt: skip
    assert (0, 0) in published.suppressed
    assert len(published.suppressed) >= 4  # a row and a column partner, and the cell closing the rectangle
    assert not determined_cells(published.suppressed, table_constraints(2, 2, True, True))


def test_a_cell_whose_counts_were_all_cut_off_shows_as_suppressed_without_taking_others() -> None:
    published = suppress(CountTable([[0, 20], [30, 40]], [[True, False], [False, False]]), total_row=True,
                         total_column=True)  # fmt: skip
    assert published.suppressed == {(0, 0)}
    assert published.cells[0] == [None, 20, 20]


tables = st.integers(1, 6).flatmap(
    lambda r: st.integers(1, 4).flatmap(
        lambda c: st.tuples(
            st.lists(st.lists(st.integers(0, 30), min_size=c, max_size=c), min_size=r, max_size=r),
            st.lists(st.lists(st.booleans(), min_size=c, max_size=c), min_size=r, max_size=r),
            st.booleans(),
            st.booleans(),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(tables)
def test_no_published_cell_is_small_and_none_is_recoverable(
    table: tuple[list[list[int]], list[list[bool]], bool, bool],
) -> None:
    kept, hidden, total_row, total_column = table
    hidden = [[h and v == 0 for h, v in zip(hr, vr, strict=True)] for hr, vr in zip(hidden, kept, strict=True)]
    published = suppress(CountTable(kept, hidden), total_row=total_row, total_column=total_column)
    rows, columns = len(kept), len(kept[0])
    for i, row in enumerate(published.cells):
        for j, cell in enumerate(row):
            assert cell is None or cell == 0 or cell >= 5
            if i < rows and j < columns and hidden[i][j]:
                assert cell is None  # a cell whose small contributions were cut off never shows as 0
    constraints = table_constraints(rows, columns, total_row, total_column)
    small = {(i, j) for i, row in enumerate(published.values) for j, v in enumerate(row) if 0 < v < 5}
    assert small <= published.suppressed
    assert not determined_cells(published.suppressed, constraints) & small
    # and the totals are consistent with the unsuppressed values
    if total_column:
        for values in published.values:
            assert values[columns] == sum(values[:columns])


def test_determined_cells_finds_a_lone_suppressed_cell() -> None:
    constraints = table_constraints(2, 2, True, True)
    assert determined_cells({(0, 0)}, constraints) == {(0, 0)}
    assert determined_cells({(0, 0), (0, 1), (1, 0), (1, 1)}, constraints) == set()


def test_the_fast_personnummer_reading_agrees_with_the_full_parse() -> None:
    from stdnum import luhn

    from deploy.simulators.platform.generator import CertificateFactory
    from schemas.identifiers import parse_personal_number
    from services.stats.domain import person_of

    day = date(2026, 1, 1)
    numbers = [p.personnummer for p in CertificateFactory(persons=500).persons]
    first = numbers[0]
    nine = f"{first[2:6]}{int(first[6:8]) + 60:02d}{first[8:11]}"
    coordination = f"{first[:2]}{nine}{luhn.calc_check_digit(nine)}"
    numbers += ["19121212-1212", coordination, "121212-1212"]  # with a dash, samordningsnummer, 10 digits
    for number in numbers:
        parsed = parse_personal_number(number, day + timedelta(days=1))
        fast = person_of(number, day)
        assert (fast.digits, fast.birth_date, fast.male) == (parsed.digits, parsed.birth_date, parsed.male), number


def test_production_refuses_the_development_pseudonym_key() -> None:
    import pytest
    from pydantic import SecretStr, ValidationError

    from services.stats.settings import StatsSettings

    with pytest.raises(ValidationError, match="STATS_PSEUDONYM_KEY"):
        StatsSettings(environment="production", citizen_ref_key=SecretStr("k" * 40))
    assert StatsSettings(environment="production", citizen_ref_key=SecretStr("k" * 40),
                         pseudonym_key=SecretStr("s" * 40)).port == 8004  # fmt: skip


def test_the_pseudonym_is_keyed_and_not_the_citizen_ref() -> None:
    from services.kit.citizen import citizen_ref
    from services.stats.domain import pseudonym

    number = "191212121212"
    assert pseudonym(number, "a") != pseudonym(number, "b")
    assert pseudonym(number, "a") != citizen_ref(number, "a")
    assert number not in pseudonym(number, "a")
