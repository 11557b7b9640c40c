"""Swedish identifiers: personnummer / samordningsnummer and HSA-id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from personnummer.personnummer import Personnummer as _LibPersonnummer
from personnummer.personnummer import PersonnummerException

_HSA_ID = re.compile(r"^SE[0-9]{10}-[A-Za-z0-9]+$")
_TWELVE_DIGITS = re.compile(r"^([0-9]{8})-?([0-9]{4})$")
_TEN_DIGITS = re.compile(r"^([0-9]{2})([0-9]{2})([0-9]{2})([-+]?)([0-9]{4})$")


class InvalidIdentifier(ValueError):
    """An identifier that is malformed or fails its check."""


@dataclass(frozen=True)
class PersonalNumber:
    """A valid personnummer or samordningsnummer, normalised to 12 digits (YYYYMMDDNNNC)."""

    digits: str
    birth_date: date
    coordination_number: bool
    male: bool

    def age_on(self, day: date) -> int:
        """Completed years on `day`."""
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


def parse_personal_number(value: str, today: date) -> PersonalNumber:
    """Parse and validate a personnummer or samordningsnummer; the birth date may not lie after `today`."""
    twelve = _twelve_digits(value, today)
    try:
        parsed = _LibPersonnummer.parse(twelve)
        digits = parsed.format(long_format=True)
        birth_date = parsed.get_date()
    except (PersonnummerException, ValueError) as exc:
        raise InvalidIdentifier("is not a valid personnummer or samordningsnummer (date or check digit)") from exc
    if birth_date > today:
        raise InvalidIdentifier("has a birth date in the future")
    return PersonalNumber(
        digits=digits,
        birth_date=birth_date,
        coordination_number=bool(parsed.is_coordination_number()),
        male=bool(parsed.is_male()),
    )


def _twelve_digits(value: str, today: date) -> str:
    """The 12-digit form. A 10-digit form's century follows from `today`: '-' under 100 years, '+' 100 or older.

    (The library would take the century from the machine's clock instead of the date the rules are applied on.)
    """
    if match := _TWELVE_DIGITS.fullmatch(value):
        return match[1] + match[2]
    match = _TEN_DIGITS.fullmatch(value)
    if match is None:
        raise InvalidIdentifier("must be YYYYMMDD-NNNC, YYYYMMDDNNNC, YYMMDD-NNNC or YYMMDD+NNNC")
    yy, month, day, separator, serial = int(match[1]), int(match[2]), int(match[3]), match[4], match[5]
    day = day - 60 if day > 60 else day  # samordningsnummer
    year = today.year - (today.year - yy) % 100  # the latest year ending in yy, not after this year
    try:
        if date(year, month, day) > today:
            year -= 100
    except ValueError as exc:
        raise InvalidIdentifier("is not a valid personnummer or samordningsnummer (date or check digit)") from exc
    if separator == "+":
        year -= 100
    return f"{year:04d}{match[2]}{match[3]}{serial}"


def check_hsa_id(value: str) -> None:
    """Raise InvalidIdentifier unless `value` has the HSA-id form SE + 10 digits + '-' + local part."""
    if len(value) > 31:
        raise InvalidIdentifier("is longer than 31 characters")
    if not _HSA_ID.fullmatch(value):
        raise InvalidIdentifier("must be SE, a 10-digit organisation number, '-' and a local part")
