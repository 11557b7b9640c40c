"""Personnummer / samordningsnummer parsing and HSA-id checks (schemas.identifiers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn

from schemas.identifiers import InvalidIdentifier, PersonalNumber, check_hsa_id, parse_personal_number

# The personnummer library decides the century of a 10-digit number from the real current date, so tests that
# parse 10-digit forms pin that date; `parse_personal_number` gets the same date as `today`.
REFERENCE = date(2026, 11, 25)


@pytest.fixture
def pinned_library_date() -> Iterator[None]:
    with mock.patch("personnummer.personnummer._get_current_date", return_value=REFERENCE):
        yield


def check_digit(nine: str) -> str:
    return str(luhn.calc_check_digit(nine))


def personnummer_12(born: date, serial: int, *, coordination: bool = False) -> str:
    """A valid 12-digit number for `born` and a 3-digit serial (day + 60 for a samordningsnummer)."""
    day = born.day + (60 if coordination else 0)
    nine = f"{born:%y%m}{day:02d}{serial:03d}"
    return f"{born:%Y}{nine[2:]}{check_digit(nine)}"


def ten_digit(twelve: str, separator: str) -> str:
    return f"{twelve[2:8]}{separator}{twelve[8:]}"


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# --- examples ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["191212121212", "19121212-1212"])
def test_twelve_digit_forms_are_valid_and_normalised(value: str) -> None:
    parsed = parse_personal_number(value, REFERENCE)

    assert parsed == PersonalNumber(
        digits="191212121212", birth_date=date(1912, 12, 12), coordination_number=False, male=True
    )


@pytest.mark.usefixtures("pinned_library_date")
@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("121212-1212", "201212121212"),
        ("1212121212", "201212121212"),
        ("121212+1212", "191212121212"),  # '+': 100 years or older
        ("850372-2384", "198503722384"),
    ],
)
def test_ten_digit_forms_take_the_century_from_the_separator(value: str, digits: str) -> None:
    assert parse_personal_number(value, REFERENCE).digits == digits


@pytest.mark.parametrize("value", ["19850372-2384", "198503722384"])
def test_samordningsnummer_is_accepted_with_the_real_birth_date(value: str) -> None:
    parsed = parse_personal_number(value, REFERENCE)

    assert parsed.coordination_number
    assert parsed.birth_date == date(1985, 3, 12)
    assert parsed.digits == "198503722384"


def test_ordinary_personnummer_is_not_a_coordination_number() -> None:
    assert not parse_personal_number("191212121212", REFERENCE).coordination_number


@pytest.mark.parametrize("value", ["19121212-1213", "191212121210", "19850372-2385"])
def test_wrong_check_digit_is_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="check digit"):
        parse_personal_number(value, REFERENCE)


@pytest.mark.parametrize(
    "value",
    [
        # the check digit is computed over the impossible digits, so only the date is wrong
        "19800230" + "123" + check_digit("800230123"),  # 30 February
        "19801301" + "123" + check_digit("801301123"),  # month 13
        "19800100" + "123" + check_digit("800100123"),  # day 0
        "19800160" + "123" + check_digit("800160123"),  # day 60 is neither a day nor a coordination day
        "19800292" + "123" + check_digit("800292123"),  # samordningsnummer for 32 February
    ],
)
def test_impossible_dates_are_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_personal_number(value, REFERENCE)


def test_birth_date_in_the_future_is_rejected() -> None:
    value = personnummer_12(date(2099, 1, 1), 123)

    with pytest.raises(InvalidIdentifier, match="future"):
        parse_personal_number(value, REFERENCE)


def test_birth_date_is_compared_with_the_given_day() -> None:
    born = REFERENCE + timedelta(days=1)
    value = personnummer_12(born, 123)

    with pytest.raises(InvalidIdentifier, match="future"):
        parse_personal_number(value, REFERENCE)
    assert parse_personal_number(value, born).birth_date == born


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "19121212",
        "19121212 1212",
        "19121212_1212",
        "19121212--1212",
        "19121212+1212",  # '+' only belongs to the 10-digit form
        "1912121212121",
        "191212-121212",
        "12121-21212",
        " 191212121212",
        "191212121212\n",
        "1912121212-12",
        "19121212-121",
        "12121212+1212-",
    ],
)
def test_garbage_shapes_are_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="must be"):
        parse_personal_number(value, REFERENCE)


def test_serial_number_000_is_rejected() -> None:
    """Serial 000 is never issued; the library refuses it, so do we."""
    with pytest.raises(InvalidIdentifier):
        parse_personal_number(personnummer_12(date(1980, 1, 1), 0), REFERENCE)


@pytest.mark.parametrize(("serial", "male"), [(121, True), (122, False), (130, False), (139, True), (982, False)])
def test_sex_comes_from_the_second_to_last_digit(serial: int, male: bool) -> None:
    assert parse_personal_number(personnummer_12(date(1980, 1, 1), serial), REFERENCE).male is male


@pytest.mark.parametrize(
    ("day", "age"),
    [
        (date(1985, 3, 12), 0),
        (date(1986, 3, 11), 0),
        (date(1986, 3, 12), 1),
        (date(2026, 3, 11), 40),
        (date(2026, 3, 12), 41),
        (date(2026, 11, 25), 41),
    ],
)
def test_age_on_counts_completed_years(day: date, age: int) -> None:
    assert parse_personal_number("19850372-2384", REFERENCE).age_on(day) == age


@pytest.mark.usefixtures("pinned_library_date")
def test_ten_digit_number_of_a_99_year_old_born_later_in_the_year() -> None:
    born = date(REFERENCE.year - 100, 12, 31)  # 99 years old on REFERENCE, so '-' is the right separator
    twelve = personnummer_12(born, 980)

    assert parse_personal_number(ten_digit(twelve, "-"), REFERENCE).birth_date == born


@pytest.mark.parametrize(
    "value",
    [
        "١٩١٢١٢١٢١٢١٢",  # Arabic-Indic digits
        "１９１２１２１２１２１２",  # full-width digits
    ],
    ids=["arabic-indic", "full-width"],
)
def test_non_ascii_digits_are_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_personal_number(value, REFERENCE)


# --- properties ----------------------------------------------------------------------------------------------

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=REFERENCE)
serials = st.integers(min_value=1, max_value=999)


@settings(max_examples=200, deadline=None)
@given(born=birth_dates, serial=serials, coordination=st.booleans())
def test_any_real_birth_date_and_serial_parses_to_twelve_digits(born: date, serial: int, coordination: bool) -> None:
    twelve = personnummer_12(born, serial, coordination=coordination)

    for value in (twelve, f"{twelve[:8]}-{twelve[8:]}"):
        parsed = parse_personal_number(value, REFERENCE)
        assert parsed.digits == twelve
        assert len(parsed.digits) == 12
        assert parsed.digits.isdigit()
        assert parsed.birth_date == born
        assert parsed.coordination_number is coordination
        assert parsed.male is (serial % 2 == 1)


@settings(max_examples=200, deadline=None)
@given(born=st.dates(min_value=date(REFERENCE.year - 99, 1, 1), max_value=REFERENCE), serial=serials)
def test_ten_digit_form_with_dash_round_trips_for_people_under_100(born: date, serial: int) -> None:
    twelve = personnummer_12(born, serial)

    with mock.patch("personnummer.personnummer._get_current_date", return_value=REFERENCE):
        assert parse_personal_number(ten_digit(twelve, "-"), REFERENCE).digits == twelve
        assert parse_personal_number(twelve[2:], REFERENCE).digits == twelve


@settings(max_examples=200, deadline=None)
@given(born=st.dates(min_value=date(1900, 1, 1), max_value=years_before(REFERENCE, 100)), serial=serials)
def test_ten_digit_form_with_plus_round_trips_for_people_of_100_or_more(born: date, serial: int) -> None:
    twelve = personnummer_12(born, serial)

    with mock.patch("personnummer.personnummer._get_current_date", return_value=REFERENCE):
        parsed = parse_personal_number(ten_digit(twelve, "+"), REFERENCE)
    assert parsed.digits == twelve
    assert parsed.age_on(REFERENCE) >= 100


@settings(max_examples=200, deadline=None)
@given(born=birth_dates, serial=serials, coordination=st.booleans(), other=st.integers(min_value=1, max_value=9))
def test_any_other_check_digit_is_rejected(born: date, serial: int, coordination: bool, other: int) -> None:
    twelve = personnummer_12(born, serial, coordination=coordination)
    wrong = twelve[:-1] + str((int(twelve[-1]) + other) % 10)

    with pytest.raises(InvalidIdentifier):
        parse_personal_number(wrong, REFERENCE)


# --- HSA-id --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["SE2321000016-15CQ", "SE2321000016-0001", "SE2321000016-a", "SE2321000016-" + "X" * 18],  # 31 characters
)
def test_valid_hsa_ids(value: str) -> None:
    check_hsa_id(value)


def test_hsa_id_longer_than_31_characters_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="31"):
        check_hsa_id("SE2321000016-" + "X" * 19)


@pytest.mark.parametrize(
    "value",
    [
        "2321000016-15CQ",  # no SE
        "se2321000016-15CQ",
        "XX2321000016-15CQ",
        "SE232100001-15CQ",  # 9-digit organisation number
        "SE23210000160-15CQ",  # 11 digits
        "SE232100001X-15CQ",
        "SE232100001615CQ",  # no dash
        "SE2321000016-",  # no local part
        "SE2321000016-15 CQ",
        "SE2321000016-15-CQ",
        "SE2321000016-15CQ\n",
        "",
    ],
)
def test_malformed_hsa_ids_are_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="must be SE"):
        check_hsa_id(value)


def test_hsa_id_with_full_width_digits_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier):
        check_hsa_id("SE２３２１００００１６-15CQ")
