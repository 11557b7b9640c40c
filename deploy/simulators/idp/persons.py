"""The test persons of the BankID (test) page, and the claims the provider issues about a person.

The listed persons come from the platform simulator's population (so they have certificates when the platform
simulator sends some), a few test patients among them, and a child under 16 (whom the portal must refuse). A typed
personnummer of someone outside the list gets a name derived from the number, so the same number always gets the
same name.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from functools import cache

from stdnum import luhn

from deploy.simulators.platform.generator import FAMILY_NAMES, GIVEN_NAMES, CertificateFactory
from schemas.identifiers import PersonalNumber

LISTED_ADULTS = 12
LISTED_TEST_PATIENTS = 3
CHILD_AGE = 10

PERSONAL_IDENTITY_NUMBER = "https://id.oidc.se/claim/personalIdentityNumber"
COORDINATION_NUMBER = "https://id.oidc.se/claim/coordinationNumber"
PERSON_CLAIMS = ("given_name", "family_name", "name", "birthdate", PERSONAL_IDENTITY_NUMBER, COORDINATION_NUMBER)
NATURAL_PERSON_INFO = "https://id.oidc.se/scope/naturalPersonInfo"
NATURAL_PERSON_NUMBER = "https://id.oidc.se/scope/naturalPersonNumber"
NAME_CLAIMS = ("given_name", "family_name", "name", "birthdate")


@dataclass(frozen=True)
class TestPerson:
    """A person one can log in as; `personnummer` has 12 digits, no dash."""

    personnummer: str
    given_name: str
    family_name: str
    birthdate: date
    note: str | None = None

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def display_number(self) -> str:
        """YYYYMMDD-NNNN, as the page shows it."""
        return f"{self.personnummer[:8]}-{self.personnummer[8:]}"

    def age_on(self, day: date) -> int:
        years = day.year - self.birthdate.year
        return years - ((day.month, day.day) < (self.birthdate.month, self.birthdate.day))

    @property
    def number_claim(self) -> str:
        """The Swedish profile's claim for this number: a samordningsnummer (day + 60) has its own."""
        return COORDINATION_NUMBER if int(self.personnummer[6:8]) > 60 else PERSONAL_IDENTITY_NUMBER

    def claims(self) -> dict[str, str]:
        """Every person claim there is about this person (besides `sub`); `scope_claims` picks the released ones."""
        return {
            self.number_claim: self.personnummer,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "name": self.name,
            "birthdate": self.birthdate.isoformat(),
        }


def scope_claims(person: TestPerson, scope: str, *, id_token: bool) -> dict[str, str]:
    """The claims released for these scopes, as a conformant provider of the Swedish profile releases them: the
    number (naturalPersonNumber) in the ID token and in userinfo; names and birthdate (naturalPersonInfo, or
    OpenID Connect's profile) in userinfo only. Nothing that was not asked for."""
    scopes = set(scope.split())
    claims = person.claims()
    released: dict[str, str] = {}
    if NATURAL_PERSON_NUMBER in scopes:
        released[person.number_claim] = claims[person.number_claim]
    if not id_token and scopes & {NATURAL_PERSON_INFO, "profile"}:
        released.update({name: claims[name] for name in NAME_CLAIMS})
    return released


@cache
def _population() -> dict[str, TestPerson]:
    persons: dict[str, TestPerson] = {}
    for p in CertificateFactory().persons:
        digits = p.personnummer
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        persons[digits] = TestPerson(
            digits, p.given_name, p.family_name, born, "Testpatient" if p.test_patient else None
        )
    return persons


def _child(today: date) -> TestPerson:
    """A child of CHILD_AGE, born 15 June, with a synthetic serial (980–999) like the platform's persons."""
    born = date(today.year - CHILD_AGE - (today < date(today.year, 6, 15)), 6, 15)
    nine = f"{born:%y%m%d}981"
    return TestPerson(f"{born:%Y%m%d}981{luhn.calc_check_digit(nine)}", "Alva", "Lindberg", born, "Under 16 år")


def listed_persons(today: date) -> list[TestPerson]:
    """The persons the BankID (test) page offers: adults, test patients (marked) and a child (marked)."""
    population = list(_population().values())
    adults = [p for p in population if p.note is None][:LISTED_ADULTS]
    test_patients = [p for p in population if p.note == "Testpatient"][:LISTED_TEST_PATIENTS]
    return [*adults, *test_patients, _child(today)]


def person_for(number: PersonalNumber, today: date) -> TestPerson:
    """The person with this (valid) personnummer: a known test person, or one named from the number."""
    known = _population().get(number.digits)
    if known is not None:
        return known
    child = _child(today)
    if child.personnummer == number.digits:
        return child
    digest = hashlib.sha256(number.digits.encode()).digest()
    given = GIVEN_NAMES[digest[0] % len(GIVEN_NAMES)]
    family = FAMILY_NAMES[digest[1] % len(FAMILY_NAMES)]
    return TestPerson(number.digits, given, family, number.birth_date, None)


def pseudonymous_subject(personnummer: str, key: bytes) -> str:
    """The `sub` of a person: stable for the same key, and not the personnummer (nor derivable without the key)."""
    return hmac.new(key, personnummer.encode(), hashlib.sha256).hexdigest()
