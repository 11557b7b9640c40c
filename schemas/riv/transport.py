"""A certificate in the RIV-TA transport format (clinicalprocess:healthcond:certificate v3), as typed values.

The model mirrors the contract's elements one to one (Swedish names kept where they are the contract's), so that
nothing a sender wrote is lost between reading and writing. Times are Swedish local time without a zone, as the
contract writes them (`TimeStampType`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class II:
    """An instance identifier: `root` names the issuing system (an OID), `extension` the id within it."""

    root: str
    extension: str


@dataclass(frozen=True, slots=True)
class CV:
    """A coded value."""

    code: str
    code_system: str
    code_system_name: str | None = None
    code_system_version: str | None = None
    display_name: str | None = None
    original_text: str | None = None


@dataclass(frozen=True, slots=True)
class DatePeriod:
    start: date | None
    end: date | None


@dataclass(frozen=True, slots=True)
class PartialDate:
    format: str  # YYYY, YYYY-MM or YYYY-MM-DD
    value: str


Typed = CV | DatePeriod | PartialDate | date


@dataclass(frozen=True, slots=True)
class Delsvar:
    """One part of an answer: text, or one typed value. `elements` counts the child elements as written, so the
    rules can refuse a text delsvar with markup in it, or a typed one with two values."""

    id: str
    text: str = ""
    value: Typed | None = None
    elements: int = 0


@dataclass(frozen=True, slots=True)
class Svar:
    """One answer to a question of the form; `instans` numbers the repetitions of a repeatable question."""

    id: str
    delsvar: tuple[Delsvar, ...]
    instans: int | None = None

    def part(self, delsvar_id: str) -> Delsvar | None:
        return next((d for d in self.delsvar if d.id == delsvar_id), None)


@dataclass(frozen=True, slots=True)
class Patient:
    person_id: II
    fornamn: str
    efternamn: str
    postadress: str
    postnummer: str
    postort: str
    mellannamn: str | None = None


@dataclass(frozen=True, slots=True)
class Vardgivare:
    vardgivare_id: II
    vardgivarnamn: str


@dataclass(frozen=True, slots=True)
class Enhet:
    enhets_id: II
    arbetsplatskod: II
    enhetsnamn: str
    postadress: str
    postnummer: str
    postort: str
    telefonnummer: str
    vardgivare: Vardgivare
    epost: str | None = None


@dataclass(frozen=True, slots=True)
class HosPersonal:
    personal_id: II
    fullstandigt_namn: str
    enhet: Enhet
    forskrivarkod: str | None = None
    befattningar: tuple[CV, ...] = ()
    specialistkompetenser: tuple[CV, ...] = ()  # code and display name only (no code system in the contract)


@dataclass(frozen=True, slots=True)
class Relation:
    typ: CV
    intygs_id: II


@dataclass(frozen=True, slots=True)
class Status:
    """A certificate's status with a party (answers to Försäkringskassan's fetch)."""

    part: CV
    status: CV
    tidpunkt: datetime


@dataclass(frozen=True, slots=True)
class Intyg:
    intygs_id: II
    typ: CV
    version: str
    patient: Patient
    skapad_av: HosPersonal
    signeringstidpunkt: datetime | None = None
    skickat_tidpunkt: datetime | None = None
    mottagare: tuple[CV, ...] = ()
    relationer: tuple[Relation, ...] = ()
    status: tuple[Status, ...] = ()
    svar: tuple[Svar, ...] = field(default=())

    def answers(self, svar_id: str) -> list[Svar]:
        return [s for s in self.svar if s.id == svar_id]


@dataclass(frozen=True, slots=True)
class Result:
    """The answer of every RIV-TA call: OK, INFO (done before, nothing changed) or ERROR with its kind."""

    result_code: str  # OK | INFO | ERROR
    error_id: str | None = None  # VALIDATION_ERROR | APPLICATION_ERROR | TECHNICAL_ERROR | REVOKED
    result_text: str | None = None


@dataclass(frozen=True, slots=True)
class Revocation:
    """RevokeCertificate v2: the issuer revokes a certificate it registered."""

    intygs_id: II
    person_id: II
    skickat_tidpunkt: datetime
    skickat_av: HosPersonal
    meddelande: str | None = None
