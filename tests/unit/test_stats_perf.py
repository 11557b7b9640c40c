"""The ingest's fast paths say what the slower, obvious code says."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from services.stats.domain import _luhn_valid
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
