"""Swedish identifiers: personnummer / samordningsnummer and HSA-id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from personnummer.personnummer import Personnummer as _LibPersonnummer
from personnummer.personnummer import PersonnummerException

_HSA_ID = re.compile(r"^SE\d{10}-[A-Za-z0-9]+$")
_PERSONNUMMER_INPUT = re.compile(r"^(\d{8}-?\d{4}|\d{6}[-+]?\d{4})$")


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
    if not _PERSONNUMMER_INPUT.fullmatch(value):
        raise InvalidIdentifier("must be YYYYMMDD-NNNC, YYYYMMDDNNNC, YYMMDD-NNNC or YYMMDD+NNNC")
    try:
        parsed = _LibPersonnummer.parse(value)
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


def check_hsa_id(value: str) -> None:
    """Raise InvalidIdentifier unless `value` has the HSA-id form SE + 10 digits + '-' + local part."""
    if len(value) > 31:
        raise InvalidIdentifier("is longer than 31 characters")
    if not _HSA_ID.fullmatch(value):
        raise InvalidIdentifier("must be SE, a 10-digit organisation number, '-' and a local part")
