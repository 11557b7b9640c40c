"""Intake's problems in Swedish, for the RIV-TA answers' `resultText` (the national store answers in Swedish).

A problem found by our own rules (services.intake.domain, schemas.identifiers, schemas.codesystems) carries an
English message at a path into our model; a journal system's staff read the answer, so the RIV-TA endpoint names
the place in the transport format (question and delsvar, patient, skapadAv) and says what is wrong in Swedish.
The JSON API keeps the English `{path, message}`. A message this table does not know is passed on as it is."""

from __future__ import annotations

import re
from collections.abc import Callable

from services.intake.domain import Problem

# Our model's fields → where they are in a RegisterCertificate message.
_PLACES: tuple[tuple[str, str], ...] = (
    ("patient.personnummer", "patient, person-id"),
    ("signed_at", "signeringstidpunkt"),
    ("revoked_at", "skickatTidpunkt"),
    ("skickatTidpunkt", "skickatTidpunkt"),
    ("issuer.hsa_id", "skapadAv, personal-id"),
    ("care_unit.care_provider.hsa_id", "vårdgivare, vardgivare-id"),
    ("care_unit.hsa_id", "enhet, enhets-id"),
    ("relation", "relation"),
    ("content.assessment_basis", "svar 1 (grund för medicinskt underlag)"),
    ("content.diagnoses", "svar 6 (diagnos)"),
    ("content.diagnosis_to_employer", "svar 100 (förmedla diagnos till arbetsgivaren)"),
    ("content.occupations", "svar 28 (sysselsättning)"),
    ("content.occupation_text", "svar 29 (nuvarande arbete)"),
    ("content.functional_impairment", "svar 35 (funktionsnedsättning)"),
    ("content.activity_limitation", "svar 17 (aktivitetsbegränsning)"),
    ("content.sick_leave_periods", "svar 32 (behov av sjukskrivning)"),
    ("content.working_time_arrangement", "svar 33 (arbetstidsförläggning)"),
    ("content.prognosis", "svar 39 (prognos)"),
    ("content.work_measures", "svar 40 (åtgärder)"),
    ("content.contact_reason", "svar 26 (kontakt med Försäkringskassan)"),
    ("content", "intygets svar"),
)

_MESSAGES: dict[str, str] = {
    "a certificate cannot relate to itself": "ett intyg kan inte ha en relation till sig självt",
    "contains a NUL character": "innehåller ett NUL-tecken",
    "is outside the years a date can have": "ligger utanför de år ett datum kan ha",
    "lies in the future": "ligger i framtiden",
    "question 100 must be answered": "frågan måste besvaras",
    "required when the diagnosis is passed on (question 100)": "ska anges när diagnosen förmedlas (svar 100)",
    "must be left out when the diagnosis is not passed on (question 100)": (
        "ska utelämnas när diagnosen inte förmedlas (svar 100)"
    ),
    "question 6: a main diagnosis is required": "en huvuddiagnos måste anges",
    "an occupation is given more than once": "en sysselsättning anges mer än en gång",
    "question 29 is required when the patient has current work": "ska besvaras när patienten har ett nuvarande arbete",
    "question 32: at least one sick-leave period is required": "minst en sjukskrivningsperiod måste anges",
    "question 33 is required when a period is below 100 % (helt nedsatt)": (
        "ska besvaras när en period har lägre nivå än helt nedsatt"
    ),
    "required with ATER_X_ANTAL_DGR (30, 60, 90, 180 or 365)": (
        "antal dagar ska anges med ATER_X_ANTAL_DGR (30, 60, 90, 180 eller 365)"
    ),
    "only allowed with ATER_X_ANTAL_DGR": "antal dagar får bara anges med ATER_X_ANTAL_DGR",
    "a measure is given more than once": "en åtgärd anges mer än en gång",
    "EJ_AKTUELLT (not relevant) excludes every other measure": "EJ_AKTUELLT utesluter alla andra åtgärder",
    "only allowed when contact with Försäkringskassan is wanted": (
        "får bara anges när kontakt med Försäkringskassan önskas"
    ),
    "codes in chapter F need at least 4 characters": "koder i kapitel F ska ha minst fyra tecken",
    "the same diagnosis is given twice": "samma diagnos anges två gånger",
    "each kind of basis may be given once": "varje slags underlag får anges en gång",
    "lies after the signing date": "ligger efter signeringsdatumet",
    "required when the basis is ANNAT (other)": "ska anges när underlaget är ANNAT",
    "ends before it starts": "slutar innan den börjar",
    "two periods have the same degree": "två perioder har samma nivå",
    "overlaps another period": "överlappar en annan period",
    "starts more than a year before the signing date": "börjar mer än ett år före signeringsdatumet",
    "ends more than a year after the signing date": "slutar mer än ett år efter signeringsdatumet",
    # schemas.identifiers
    "is not a valid personnummer or samordningsnummer (date or check digit)": (
        "är inte ett giltigt personnummer eller samordningsnummer (datum eller kontrollsiffra)"
    ),
    "has a birth date in the future": "har ett födelsedatum i framtiden",
    "must be YYYYMMDD-NNNC, YYYYMMDDNNNC, YYMMDD-NNNC or YYMMDD+NNNC": (
        "ska skrivas ÅÅÅÅMMDD-NNNK, ÅÅÅÅMMDDNNNK, ÅÅMMDD-NNNK eller ÅÅMMDD+NNNK"
    ),
    "is longer than 31 characters": "är längre än 31 tecken",
    "must be SE, a 10-digit organisation number, '-' and a local part": (
        "ska vara SE, ett organisationsnummer med tio siffror, '-' och en lokal del"
    ),
}

_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"lies before (\S+), which is not plausible"),
        lambda m: f"ligger före {m[1]}, vilket inte är rimligt",
    ),
    (
        re.compile(r"(question \d+) \(.*\) is required unless question 27 \(smittskydd\) is set"),
        lambda m: "måste besvaras om inte svar 27 (smittbärarpenning) är angivet",
    ),
    (
        re.compile(r"(.+) is not a code in (\S+) \(it is one in (\S+), code system (\S+)\)"),
        lambda m: f"{m[1]} är inte en kod i {m[2]} (den finns i {m[3]}, kodsystem {m[4]})",
    ),
    (re.compile(r"(.+) is not a code in (\S+)"), lambda m: f"{m[1]} är inte en kod i {m[2]}"),
    (re.compile(r"(\S+) is not a known code system: use (.+)"), lambda m: f"{m[1]} är inte ett känt kodsystem"),
    (
        re.compile(r"a certificate's diagnoses use one code system: .*"),
        lambda m: "ett intygs diagnoser ska ha ett och samma kodsystem (ICD-10-SE eller KSH97-P)",
    ),
)


def place(path: str) -> str:
    """Where a path into our model is in the transport format (the path itself when nothing matches)."""
    for prefix, name in _PLACES:
        if path == prefix or path.startswith(prefix + "."):
            rest = path[len(prefix) + 1 :]
            index = re.match(r"(\d+)", rest)
            return f"{name}, nr {int(index[1]) + 1}" if index else name
    return path


def message(text: str) -> str:
    """A message of our rules in Swedish (the message itself when this table does not know it)."""
    if (known := _MESSAGES.get(text)) is not None:
        return known
    for pattern, render in _PATTERNS:
        if (match := pattern.fullmatch(text)) is not None:
            return render(match)
    return text


def problem(p: Problem) -> str:
    """One problem as the RIV-TA answer names it: `place: what is wrong`."""
    return f"{place(p.path)}: {message(p.message)}"
