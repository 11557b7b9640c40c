"""The counties intake remembers between RIV-TA deliveries (services.intake.handlers.UnitCounties)."""

from __future__ import annotations

from services.intake.handlers import UnitCounties


def test_a_county_is_remembered_until_forgotten() -> None:
    counties = UnitCounties()
    assert counties.get("SE2321000016-15CQ") is None
    counties.remember("SE2321000016-15CQ", "01")
    counties.remember("SE2321000016-15CQ", "12")  # moved: the newer county replaces the older
    assert counties.get("SE2321000016-15CQ") == "12"
    counties.forget("SE2321000016-15CQ")
    counties.forget("SE2321000016-15CQ")  # forgetting twice is no error
    assert counties.get("SE2321000016-15CQ") is None
    assert len(counties) == 0


def test_at_most_max_units_are_remembered_the_oldest_first_forgotten() -> None:
    counties = UnitCounties(max_units=3)
    for unit in ("A", "B", "C"):
        counties.remember(unit, "01")
    counties.remember("B", "03")  # known already: nothing is forgotten
    assert len(counties) == 3
    counties.remember("D", "04")
    assert (counties.get("A"), counties.get("B"), counties.get("C"), counties.get("D")) == (None, "03", "01", "04")
    assert len(counties) == 3
