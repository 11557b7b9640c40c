"""Sick-leave cases, groupings, coarse facts and aggregate deltas (pure rules of services/stats/domain.py)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats.domain import (
    AGE_GROUPS,
    LENGTH_GROUPS,
    Fact,
    age_floor,
    age_group,
    aggregate_delta,
    classify,
    length_group,
    merge_cases,
    replaced_id,
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
    assert (first.code, first.chapter, first.group) == ("M545", "XIII", "M50-M54")  # the ICD-10-SE block (avsnitt)


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


def test_facts_keep_the_age_group_not_the_age() -> None:
    assert [age_floor(a) for a in (3, 15, 16, 20, 21, 64, 65, 66, 90)] == [0, 0, 16, 16, 21, 61, 61, 66, 66]
    for age in range(0, 100):
        assert age_group(age_floor(age)) == age_group(age)


def test_replaced_certificates_are_named_by_the_relation() -> None:
    from deploy.simulators.platform.generator import CertificateFactory
    from schemas.certificate import CERTIFICATE_ADAPTER

    body = CertificateFactory(seed=2).certificate("LISJP")
    assert replaced_id(CERTIFICATE_ADAPTER.validate_python(body)) is None
    body["relation"] = {"kind": "REPLACES", "certificate_id": "old-1"}
    assert replaced_id(CERTIFICATE_ADAPTER.validate_python(body)) == "old-1"
    body["relation"] = {"kind": "EXTENDS", "certificate_id": "old-1"}
    assert replaced_id(CERTIFICATE_ADAPTER.validate_python(body)) is None


def test_the_aggregate_delta_carries_counts_and_record_key_sums_that_cancel() -> None:
    [case] = merge_cases([fact("a", [(0, 9, 100)])])
    added = aggregate_delta(b"s", (), [case])
    assert len(added) == 6
    assert all(n == 1 and 0 <= k < 2**32 for n, k in added.values())
    assert len({k for _, k in added.values()}) == 1  # one record key in every dimension's row
    assert aggregate_delta(b"s", [case], [case]) == {}
    assert aggregate_delta(b"t", (), [case]) != added  # keyed


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
    from tests.harness.production import kafka_login

    strong = {"scb": SecretStr("0123456789abcdef0123456789abcdef")}
    with pytest.raises(ValidationError, match="STATS_PSEUDONYM_KEY"):
        StatsSettings(environment="production", analyst_tokens=strong, **kafka_login())  # type: ignore[arg-type]
    key = SecretStr("4b9d2f6a8c0e1g3i5k7m9o1q3s5u7w9y0a2c4e6g8i0k2m4o6q8s0u2w4y6a8c")
    login = kafka_login("stats")
    assert StatsSettings(environment="production", pseudonym_key=key, analyst_tokens=strong, **login).port == 8004  # type: ignore[arg-type]


def test_production_refuses_the_development_analyst_token_and_weak_ones() -> None:
    import pytest
    from pydantic import SecretStr, ValidationError

    from services.stats.settings import StatsSettings
    from tests.harness.production import kafka_login

    key = SecretStr("4b9d2f6a8c0e1g3i5k7m9o1q3s5u7w9y0a2c4e6g8i0k2m4o6q8s0u2w4y6a8c")
    for weak in ("dev-analyst-secret", "short-but-random-9f3k", "a" * 40):
        with pytest.raises(ValidationError, match="STATS_ANALYST_TOKENS"):
            StatsSettings(environment="production", analyst_tokens={"x": SecretStr(weak)}, pseudonym_key=key,
                          **kafka_login())  # type: ignore[arg-type]  # fmt: skip
    assert StatsSettings(environment="development").analyst_tokens["dev"].get_secret_value() == "dev-analyst-secret"


def test_the_pseudonym_is_a_keyed_hash_of_the_citizen_ref() -> None:
    from services.kit.citizen import citizen_ref
    from services.stats.domain import pseudonym

    ref = citizen_ref("191212121212", "system-key")
    assert pseudonym(ref, "a") != pseudonym(ref, "b")
    assert pseudonym(ref, "a") != ref
    assert pseudonym(ref, "a") == pseudonym(ref, "a")  # withdrawal finds the facts by computing it again
