"""The ingest's fast paths say what the slower, obvious code says."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from services.stats.domain import MAX_GAP_DAYS, Case, Fact, _luhn_valid, merge_cases, union_days
from services.stats.handlers import GC_THRESHOLDS, ingest_gc


@given(st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_luhn_check_agrees_with_stdnum(digits: str) -> None:
    assert _luhn_valid(digits) == luhn.is_valid(digits)


def test_ingest_gc_is_in_effect_only_inside() -> None:
    before = gc.get_threshold()
    with ingest_gc():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def reference_merge(facts: Iterable[Fact]) -> list[Case]:
    """DOMAIN.md's rule written plainly (the first implementation): sort every period, cut where the gap exceeds
    5 days, then take each case's attributes from its certificates."""
    by_person: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for fact in facts:
        if fact.cert_type in ("LISJP", "FK7263") and fact.periods:
            by_person[(fact.pseudonym, fact.provider)].append(fact)
    cases = []
    for (person, provider), group in sorted(by_person.items()):
        spans = sorted(
            ((s, e, f) for f in group for s, e, _ in f.periods), key=lambda x: (x[0], x[1], x[2].certificate_id)
        )
        clusters: list[list[tuple[date, date, Fact]]] = []
        end: date | None = None
        for s, e, f in spans:
            if end is None or (s - end).days - 1 > MAX_GAP_DAYS:
                clusters.append([])
                end = None
            clusters[-1].append((s, e, f))
            end = e if end is None else max(end, e)
        for cluster in clusters:
            members = {f.certificate_id: f for _, _, f in cluster}
            latest = max(members.values(), key=lambda f: (f.signed_at_us, f.certificate_id))
            inside = [(s, e) for s, e, f in cluster if f is latest]
            degree = next(d for s, e, d in reversed(latest.periods) if (s, e) in inside)
            cases.append(Case(person, provider, latest.county, latest.sex, min(s for s, _, _ in cluster),
                              max(e for _, e, _ in cluster), union_days([(s, e) for s, e, _ in cluster]),
                              max(f.age for f in members.values()), latest.code, latest.chapter, latest.group,
                              degree, len(members)))  # fmt: skip
    return cases


D0 = date(2026, 1, 1)
facts = st.lists(
    st.builds(
        lambda cid, person, provider, signed, age, code, typ, periods: Fact(
            cid,
            person,
            typ,
            provider,
            "01",
            "F",
            age,
            code,
            "V",
            "F30-F39",
            D0 + timedelta(days=signed),
            signed * 86_400_000_000 + len(cid),
            tuple(sorted((D0 + timedelta(days=s), D0 + timedelta(days=s + n), d) for s, n, d in periods)),
        ),
        st.text(alphabet="abcdef", min_size=1, max_size=3),
        st.sampled_from(["p1", "p2"]),
        st.sampled_from(["SE1", "SE2"]),
        st.integers(0, 60),
        st.integers(10, 70),
        st.sampled_from(["F321", "M545", None]),
        st.sampled_from(["LISJP", "LISJP", "FK7263", "AG7804"]),
        st.lists(st.tuples(st.integers(0, 90), st.integers(0, 20), st.sampled_from([25, 50, 75, 100])), max_size=4),
    ),
    max_size=12,
    unique_by=lambda f: f.certificate_id,
)


@given(facts)
def test_the_one_pass_merge_agrees_with_the_plain_rule(given_facts: list[Fact]) -> None:
    assert merge_cases(given_facts) == reference_merge(given_facts)
