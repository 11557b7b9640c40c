"""Realistic synthetic certificates from a fixed seed.

Patients get clearly synthetic personnummer: real dates, serial numbers 980–999 (never assigned to real people in
this project's data), check digit computed with python-stdnum's Luhn. Names, units and diagnoses are plausible but
invented.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stdnum import luhn

from schemas.certificate import County

GIVEN_NAMES = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Anders", "Emma", "Mohammed",
               "Elin", "Per", "Fatima", "Nils", "Lina", "Oskar", "Ida", "Ali", "Sofia", "Gustav"]  # fmt: skip
FAMILY_NAMES = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
                "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Hussein", "Lindberg", "Berg"]  # fmt: skip
STREETS = ["Storgatan", "Kungsgatan", "Drottninggatan", "Skolvägen", "Björkvägen", "Parkgatan"]


@dataclass(frozen=True)
class SimCareUnit:
    hsa_id: str
    name: str
    street: str
    postal_code: str
    city: str
    phone: str
    county: County
    provider_hsa_id: str
    provider_name: str

    def as_json(self) -> dict[str, Any]:
        return {
            "hsa_id": self.hsa_id,
            "name": self.name,
            "address": {"street": self.street, "postal_code": self.postal_code, "city": self.city},
            "phone": self.phone,
            "county": self.county.value,
            "care_provider": {"hsa_id": self.provider_hsa_id, "name": self.provider_name},
        }


# Sankt Görans sjukhus is connected by intake's seed; the others are connected by `make run` in development.
CARE_UNITS = [
    SimCareUnit("SE2321000016-15CQ", "Sankt Görans sjukhus", "Sankt Göransplan 1", "112 81", "Stockholm",
                "08-587 010 00", County.STOCKHOLM, "SE2321000016-0001", "Region Stockholm"),
    SimCareUnit("SE2321000016-7B2K", "Vårdcentral Kungsholmen", "Fleminggatan 22", "112 26", "Stockholm",
                "08-123 400 00", County.STOCKHOLM, "SE2321000016-0001", "Region Stockholm"),
    SimCareUnit("SE2321000131-E4F1", "Sahlgrenska universitetssjukhuset", "Blå stråket 5", "413 45", "Göteborg",
                "031-342 00 00", County.VASTRA_GOTALAND, "SE2321000131-0001", "Västra Götalandsregionen"),
    SimCareUnit("SE2321000255-A11C", "Vårdcentralen Lund", "Bankgatan 4", "222 20", "Lund",
                "046-123 45 00", County.SKANE, "SE2321000255-0001", "Region Skåne"),
    SimCareUnit("SE2321000222-0D9E", "Uppsala vårdcentral", "Svartbäcksgatan 9", "753 20", "Uppsala",
                "018-611 00 00", County.UPPSALA, "SE2321000222-0001", "Region Uppsala"),
    SimCareUnit("SE2321000164-N8P3", "Norrlands universitetssjukhus", "Daniel Naezéns väg 1", "907 37", "Umeå",
                "090-785 00 00", County.VASTERBOTTEN, "SE2321000164-0001", "Region Västerbotten"),
]  # fmt: skip

# (code, weight): a mix shaped like Swedish sick leave, with mental and musculoskeletal diagnoses dominating.
DIAGNOSES = [("F43.8A", 14), ("F32.1", 10), ("F41.9", 6), ("F33.1", 4), ("M54.5", 9), ("M54.4", 4),
             ("M75.1", 4), ("M51.1", 3), ("S83.5", 3), ("S82.6", 2), ("J06.9", 5), ("U07.1", 2),
             ("C50.9", 2), ("G43.9", 2), ("K35.8", 1), ("O26.8", 3), ("I21.9", 1), ("F10.2", 1)]  # fmt: skip
ISSUERS = [("SE2321000016-L001", "Lena Läkare", "Specialistläkare"),
           ("SE2321000016-L002", "Omar Doktor", "Distriktsläkare"),
           ("SE2321000016-L003", "Britt Medicus", "Överläkare")]  # fmt: skip


def synthetic_personnummer(rng: random.Random) -> str:
    """A valid 12-digit personnummer with a serial in 980–999 and a birth date between 1955 and 2007."""
    born = date(1955, 1, 1) + timedelta(days=rng.randrange(0, 52 * 365))
    nine = f"{born:%y%m%d}{rng.randrange(980, 1000)}"
    return f"{born:%Y%m%d}{nine[6:]}{luhn.calc_check_digit(nine)}"


@dataclass(frozen=True)
class Person:
    personnummer: str
    given_name: str
    family_name: str
    street: str
    postal_code: str
    city: str
    test_patient: bool


class CertificateFactory:
    """Makes valid and deliberately invalid certificates, reproducibly from `seed`."""

    def __init__(
        self,
        seed: int = 7804,
        *,
        persons: int = 200,
        persons_seed: int = 7804,
        test_patient_share: float = 0.02,
    ) -> None:
        # The population is fixed by persons_seed, so the same test persons exist whatever certificates are made.
        population = random.Random(persons_seed)
        self.persons = [self._person(population, test_patient_share) for _ in range(persons)]
        self.rng = random.Random(seed)

    @staticmethod
    def _person(rng: random.Random, test_share: float) -> Person:
        return Person(
            personnummer=synthetic_personnummer(rng),
            given_name=rng.choice(GIVEN_NAMES),
            family_name=rng.choice(FAMILY_NAMES),
            street=f"{rng.choice(STREETS)} {rng.randrange(1, 80)}",
            postal_code=f"{rng.randrange(100, 990)} {rng.randrange(10, 99)}",
            city=rng.choice(["Stockholm", "Göteborg", "Malmö", "Uppsala", "Umeå", "Lund"]),
            test_patient=rng.random() < test_share,
        )

    def certificate(
        self,
        cert_type: str | None = None,
        *,
        person: Person | None = None,
        unit: SimCareUnit | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """One valid certificate as the JSON body intake expects."""
        rng = self.rng
        now = now or datetime.now(UTC)
        cert_type = cert_type or ("AG7804" if rng.random() < 0.2 else "LISJP")
        person = person or rng.choice(self.persons)
        unit = unit or rng.choices(CARE_UNITS, weights=[6, 2, 2, 1, 1, 1])[0]
        signed = now - timedelta(days=rng.randrange(0, 20), minutes=rng.randrange(1, 600))
        start = signed.date() - timedelta(days=rng.randrange(0, 4))
        periods = self._periods(start, cert_type)
        codes = [c for c, _ in DIAGNOSES]
        main = rng.choices(codes, weights=[w for _, w in DIAGNOSES])[0]
        diagnoses = [{"code": main}]
        if rng.random() < 0.15:
            diagnoses.append({"code": rng.choice([c for c in codes if c != main])})
        issuer = rng.choice(ISSUERS)
        prognosis_kind = rng.choices(
            [
                "ATER_X_ANTAL_DGR",
                "STOR_SANNOLIKHET",
                "PROGNOS_OKLAR",
                "SANNOLIKT_EJ_ATERGA_TILL_SYSSELSATTNING",
            ],
            weights=[5, 3, 2, 1],
        )[0]
        occupation = rng.choices(["NUVARANDE_ARBETE", "ARBETSSOKANDE", "FORALDRALEDIG", "STUDIER"], [8, 2, 1, 1])[0]
        content: dict[str, Any] = {
            "assessment_basis": [{"kind": "UNDERSOKNING", "date": signed.date().isoformat()}],
            "occupations": [occupation],
            "diagnoses": diagnoses,
            "functional_impairment": "Nedsatt koncentrationsförmåga och uttalad trötthet.",
            "activity_limitation": "Klarar inte att utföra arbetsuppgifter som kräver längre fokus.",
            "sick_leave_periods": periods,
            "prognosis": {"kind": prognosis_kind, **({"days": rng.choice([30, 60, 90])}
                                                     if prognosis_kind == "ATER_X_ANTAL_DGR" else {})},
            "work_measures": rng.choice([["EJ_AKTUELLT"], ["ARBETSANPASSNING"], ["ARBETSTRANING", "KONTAKT_FHV"]]),
            "travel_to_work": rng.random() < 0.1,
        }  # fmt: skip
        if occupation == "NUVARANDE_ARBETE":
            content["occupation_text"] = rng.choice(["Undersköterska", "Lärare", "Lagerarbetare", "Ingenjör"])
        if any(p["degree"] < 100 for p in periods):
            recommended = rng.random() < 0.6
            content["working_time_arrangement"] = {"recommended": recommended} | (
                {"motivation": "Förmiddagar fungerar bäst för patienten."} if recommended else {}
            )
        if cert_type == "AG7804":
            content["diagnosis_to_employer"] = rng.random() < 0.5
            if not content["diagnosis_to_employer"]:
                del content["diagnoses"]
        patient: dict[str, Any] = {
            "personnummer": person.personnummer,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "address": {"street": person.street, "postal_code": person.postal_code, "city": person.city},
        }
        if person.test_patient:
            patient["test_patient"] = True
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": cert_type,
            "type_version": "1.0",
            "signed_at": signed.isoformat(),
            "patient": patient,
            "issuer": {"hsa_id": issuer[0], "name": issuer[1], "title": issuer[2]},
            "care_unit": unit.as_json(),
            "content": content,
        }

    def _periods(self, start: date, cert_type: str) -> list[dict[str, Any]]:
        """One or two periods. A LISJP v1 never mixes 100 % with a partial degree: its rules forbid question 33
        beside a full period and require it beside a partial one (LISJP's R26)."""
        rng = self.rng
        first_days = rng.choice([7, 10, 14, 14, 21, 28, 30, 60])
        degree = rng.choices([100, 75, 50, 25], weights=[6, 1, 3, 1])[0]
        periods: list[dict[str, Any]] = [
            {"degree": degree, "start": start, "end": start + timedelta(days=first_days - 1)}
        ]
        if degree > 25 and rng.random() < 0.3 and not (cert_type == "LISJP" and degree == 100):
            next_start = start + timedelta(days=first_days)
            lower = rng.choice([d for d in (75, 50, 25) if d < degree])
            periods.append({"degree": lower, "start": next_start, "end": next_start + timedelta(days=13)})
        return [{**p, "start": p["start"].isoformat(), "end": p["end"].isoformat()} for p in periods]

    def invalid_certificate(self, cert_type: str | None = None) -> tuple[dict[str, Any], str]:
        """A certificate broken in one realistic way, with a description of the fault."""
        cert = self.certificate(cert_type)
        fault = self.rng.choice(["check_digit", "missing_q35", "overlap", "unknown_icd", "bad_degree", "future"])
        content = cert["content"]
        if fault == "check_digit":
            pnr = cert["patient"]["personnummer"]
            cert["patient"]["personnummer"] = pnr[:-1] + str((int(pnr[-1]) + 1) % 10)
        elif fault == "missing_q35":
            del content["functional_impairment"]
        elif fault == "overlap":
            first = content["sick_leave_periods"][0]
            content["sick_leave_periods"] = [
                first,
                {"degree": 50 if first["degree"] != 50 else 25, "start": first["start"], "end": first["end"]},
            ]
            content["working_time_arrangement"] = {"recommended": True}
        elif fault == "unknown_icd":
            content["diagnoses"] = [{"code": "J98.99"}]
            if cert["type"] == "AG7804":
                content["diagnosis_to_employer"] = True
        elif fault == "bad_degree":
            content["sick_leave_periods"][0]["degree"] = 30
        else:
            cert["signed_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        return cert, fault
